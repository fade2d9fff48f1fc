"""Pytest fixture for a real OpenID provider (registered from conftest.py via pytest_plugins).

``oidc_provider`` (session): one ``oidc-provider`` under Node on loopback (``oidc_harness``).
Set ``INTERLOCK_SKIP_OIDC=1`` to skip the tests that need it; any other problem (no Node,
``npm ci`` failing, the provider not starting) fails loudly with the log tail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from oidc_harness import OidcProvider, ensure_node_modules


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    if os.environ.get("INTERLOCK_SKIP_OIDC") == "1":
        pytest.skip("INTERLOCK_SKIP_OIDC=1")
    ensure_node_modules()
    provider = OidcProvider(tmp_path_factory.mktemp("oidc-provider"))
    try:
        provider.start()
        provider.wait_ready()
    except BaseException:
        provider.stop()
        raise
    yield provider
    provider.stop()
