"""A real OpenID provider (panva's ``oidc-provider``, run with Node) for the OIDC tests.

``ensure_node_modules()`` runs ``npm ci`` once into ``tests/oidc/node_modules`` from the
committed ``package-lock.json`` (an fcntl lock serialises concurrent pytest processes; a
marker holding the lock file's hash says the install is complete and current).
``OidcProvider`` runs ``node tests/oidc/server.mjs <port>`` on a free loopback port in its own
session, waits for the discovery document, gets JWT access tokens by client_credentials,
rotates the provider's signing key through its loopback admin endpoint, and stops the session
by its ids (never by name). What the provider offers is described in ``server.mjs``.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness_process
import httpx
from harness_process import free_port, stop_session, tail, track, untrack

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
LOCK_FILE = OIDC_DIR / "package-lock.json"
MARKER = OIDC_DIR / "node_modules" / harness_process.READY_MARKER
CLIENT = ("interlock-test", "interlock-test-secret")
AUDIENCE = "urn:interlock:api"        # the resource server the tests trust
OTHER_AUDIENCE = "urn:interlock:other"
SHORT_AUDIENCE = "urn:interlock:short"    # access tokens live 1 second
FUTURE_AUDIENCE = "urn:interlock:future"  # nbf an hour ahead


class OidcHarnessError(RuntimeError):
    """The provider could not be installed, started or driven; the message has the log tail."""


def ensure_node_modules() -> Path:
    """``tests/oidc/node_modules`` installed by ``npm ci`` from the lock file, if not already."""
    digest = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    if MARKER.is_file() and MARKER.read_text().split()[0] == digest:
        return MARKER.parent
    npm = shutil.which("npm")
    if npm is None:
        raise OidcHarnessError("npm is not on PATH: install Node.js 20.19+ with npm")
    root = harness_process.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    install_log = root / "oidc-npm.install.log"
    with open(root / "oidc-npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if MARKER.is_file() and MARKER.read_text().split()[0] == digest:
            return MARKER.parent
        with open(install_log, "wb") as out:
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, check=False)
        if result.returncode != 0:
            raise OidcHarnessError(f"npm ci in {OIDC_DIR} failed (exit {result.returncode}); "
                                   f"log {install_log}:\n{tail(install_log)}")
        MARKER.write_text(f"{digest} installed at {datetime.now(UTC).isoformat()}\n")
    return MARKER.parent


class OidcProvider:
    """One ``oidc-provider`` on 127.0.0.1; ``issuer`` is its base URL."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / "oidc-provider.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(timeout=10.0)

    def __repr__(self) -> str:
        return f"OidcProvider({self.issuer})"

    def start(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise OidcHarnessError("node is not on PATH: install Node.js 20.19+")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [node, "server.mjs", str(self.port)], cwd=OIDC_DIR,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        track(self)

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """The discovery document, once the provider answers it; raises with the log tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise OidcHarnessError(f"{self!r} exited:\n{tail(self.log_path)}")
            try:
                response = self._http.get(f"{self.issuer}/.well-known/openid-configuration")
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise OidcHarnessError(f"{self!r} not ready in {timeout}s:\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self._proc is not None:
            stop_session(self._proc, timeout=10.0, straggler_grace=2.0, error=OidcHarnessError)
            self._proc = None
        self._http.close()
        untrack(self)

    def token(self, audience: str = AUDIENCE, groups: tuple[str, ...] = ()) -> str:
        """A JWT access token for ``audience`` (client_credentials), with ``groups``."""
        form = {"grant_type": "client_credentials", "resource": audience}
        if groups:
            form["groups"] = ",".join(groups)
        response = self._http.post(f"{self.issuer}/token", data=form, auth=CLIENT)
        if response.status_code != 200:
            raise OidcHarnessError(f"token request answered {response.status_code}: "
                                   f"{response.text[:500]}")
        return str(response.json()["access_token"])

    def rotate(self, *, keep_old: bool) -> list[str]:
        """A new signing key first in the JWKS (the old ones kept or removed); the kids."""
        response = self._http.post(f"{self.issuer}/__rotate",
                                   params={"keep_old": "1" if keep_old else "0"})
        response.raise_for_status()
        return list(response.json()["kids"])

    def jwks_requests(self) -> int:
        """How many times the JWKS has been fetched from this provider."""
        response = self._http.get(f"{self.issuer}/__stats")
        response.raise_for_status()
        return int(response.json()["jwks_requests"])
