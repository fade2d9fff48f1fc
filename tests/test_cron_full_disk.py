"""`interlock cron exec` when its spool cannot be written: a full file system (a tiny tmpfs
filled to ENOSPC), a read-only one; the job's exit code and output stay its own, the wrapper
prints nothing and leaves no temp file. And the caps on `delivery.log` and `rejected/`.
The real wrapper runs as a subprocess, with the API on a closed loopback port (so reports
must be spooled) or on a tiny server that refuses them."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cron_setup import CronHost
from harness_process import free_port

LOG_MAX_BYTES = 1 << 20  # interlock_cron.spool.LOG_MAX_BYTES
REJECTED_KEEP = 1000  # interlock_cron.spool.REJECTED_KEEP


@contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount permission): "
                    f"{mounted.stderr.strip() or mounted.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _fill(directory: Path) -> None:
    """Write until the file system says ENOSPC."""
    with (directory / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    with pytest.raises(OSError):
        (directory / "probe").write_bytes(b"x" * 4096)
    (directory / "probe").unlink(missing_ok=True)


def _listing(directory: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(directory)), p.stat().st_size)
                  for p in directory.rglob("*"))


def _assert_untouched_runs(host: CronHost, port: int) -> None:
    before = _listing(host.spool)
    for code in (0, 3):
        done = host.wrap(port, "j", "sh", "-c", f"echo out; exit {code}")
        assert (done.returncode, done.stdout, done.stderr) == (code, b"out\n", b"")
    assert _listing(host.spool) == before


def test_a_full_disk_changes_nothing_crond_sees(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "full", "size=64k,mode=0700") as spool:
        _fill(spool)
        _assert_untouched_runs(CronHost(root=tmp_path, spool=spool), free_port())


def test_a_read_only_spool_changes_nothing_crond_sees(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "ro", "size=64k,mode=0700") as spool:
        (spool / "delivery.log").write_text("earlier\n", encoding="utf-8")
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(spool)],
                                   capture_output=True, text=True, check=False)
        assert remounted.returncode == 0, remounted.stderr
        with pytest.raises(OSError):
            (spool / "probe").write_text("x", encoding="utf-8")
        _assert_untouched_runs(CronHost(root=tmp_path, spool=spool), free_port())


def test_a_spool_under_a_missing_read_only_parent_changes_nothing(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "ro", "size=64k,ro") as mount:
        host = CronHost(root=tmp_path, spool=mount / "spool" / "cron")
        done = host.wrap(free_port(), "j", "sh", "-c", "echo out; exit 3")
        assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"")
        assert list(mount.iterdir()) == []


def test_delivery_log_is_rotated_at_its_cap(tmp_path: Path) -> None:
    host = CronHost(root=tmp_path, spool=tmp_path / "spool")
    host.spool.mkdir()
    log = host.spool / "delivery.log"
    log.write_bytes(b"old line\n" * (LOG_MAX_BYTES // 9 + 50_000))
    done = host.wrap(free_port(), "j", "sh", "-c", "echo out")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"out\n", b"")
    assert 0 < log.stat().st_size <= LOG_MAX_BYTES
    assert "not delivered" in log.read_text(encoding="utf-8")
    assert (host.spool / "delivery.log.1").read_bytes().startswith(b"old line\n")
    assert len(host.spooled()) == 2


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(401)
        self.end_headers()
        self.wfile.write(b"bad signature")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def refusing_api() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_rejected_keeps_only_the_newest_reports(tmp_path: Path, refusing_api: int) -> None:
    host = CronHost(root=tmp_path, spool=tmp_path / "spool")
    rejected = host.spool / "rejected"
    rejected.mkdir(parents=True)
    for n in range(REJECTED_KEEP):
        (rejected / f"{n + 1:020d}-old-start.json").write_text("{}", encoding="utf-8")
        (rejected / f"{n + 1:020d}-old-start.json.reason").write_text("HTTP 401",
                                                                     encoding="utf-8")
    done = host.wrap(refusing_api, "j", "sh", "-c", "echo out; exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"")
    reports = sorted(p.name for p in rejected.glob("*.json"))
    assert len(reports) == REJECTED_KEEP
    assert len(list(rejected.glob("*.reason"))) == REJECTED_KEEP
    new = [name for name in reports if "-old-" not in name]
    assert [name.rsplit("-", 1)[1] for name in new] == ["start.json", "finish.json"]
    assert f"{1:020d}-old-start.json" not in reports
    assert f"{3:020d}-old-start.json" in reports
    assert "refused by the API" in (host.spool / "delivery.log").read_text(encoding="utf-8")
