"""The one configuration-file cache (interlock.config.files): keyed by path and parser,
re-read when the file's mtime or size changes, and thread-safe."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml

import interlock.adapters as sdk
from interlock.config import files

calls: list[Path] = []


def _counting(path: Path) -> str:
    calls.append(path)
    return path.read_text()


@pytest.fixture(autouse=True)
def _fresh() -> None:
    files.clear()
    calls.clear()


def test_parsed_once_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("one")
    assert files.cached_file(path, _counting) == "one"
    assert files.cached_file(path, _counting) == "one"
    assert len(calls) == 1
    stat = path.stat()
    path.write_text("two!")  # another size, the same mtime: still seen
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert files.cached_file(path, _counting) == "two!"
    path.write_text("thr!")  # the same size, another mtime: still seen
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert files.cached_file(path, _counting) == "thr!"
    assert len(calls) == 3


def test_relative_and_absolute_paths_share_an_entry(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text("x: 1")
    monkeypatch.chdir(tmp_path)
    assert files.cached_file("a.yaml", _counting) == files.cached_file(tmp_path / "a.yaml",
                                                                       _counting)
    assert len(calls) == 1


def test_errors_are_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    with pytest.raises(FileNotFoundError):
        files.load_yaml(path)
    path.write_text("a: [")
    with pytest.raises(yaml.YAMLError):
        files.load_yaml(path)
    path.write_text("a: [1]\n")
    assert files.load_yaml(path) == {"a": [1]}


def test_threads_share_one_parse(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a: 1")
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(files.cached_file(path, _counting)))
               for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(seen) == 16


def test_adapters_reach_it_through_the_sdk() -> None:
    assert sdk.load_yaml is files.load_yaml and sdk.cached_file is files.cached_file
    assert {"load_yaml", "cached_file"} <= set(sdk.__all__)
