"""Hosts made of network namespaces, for tests where every message must cross a network.

A `Lab` is a "services" namespace holding a bridge (10.231.N.1/24) with a private Redis and a
private PostgreSQL bound to that address, and one namespace per "host", each joined to the
bridge by a veth pair (the host's `eth0`, 10.231.N.10+). The test's own (root) namespace is
joined by one more veth, so the test reaches the API, Redis and PostgreSQL as a client on
another host would. Each host's processes also get a UTS namespace with the host's name, so
`hostname` (and Interlock's worker ids, `host:pid`) say which host ran what.

Cutting a host (`Lab.cut`) sets its port on the bridge down: its packets go nowhere, its
connections stay open (TCP retransmits), exactly what a pulled cable does.

Everything a lab creates (namespaces, links, processes by process group, its PostgreSQL
directory) is removed by `Lab.close`, which is safe to call after any failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

SUBNET_PREFIX = "10.231"
SERVICES_HOST = 1     # .1: the bridge in the services namespace (Redis, PostgreSQL)
ROOT_HOST = 254       # .254: the test's own end
PG_PORT, REDIS_PORT = 5432, 6379   # their own namespace: no clash with the machine's


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    missing = [tool for tool in ("ip", "tc", "unshare", "setpriv", "runuser", "redis-server")
               if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} on PATH"
    if pg_bin() is None:
        return "needs PostgreSQL server binaries (/usr/lib/postgresql/*/bin/postgres)"
    probe = f"ilkp{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet() -> str:
    """A 10.231.N.0/24 no interface or route of this machine uses yet."""
    used = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                          text=True).stdout
    used += subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    for n in secrets.SystemRandom().sample(range(1, 254), 253):
        if f"{SUBNET_PREFIX}.{n}." not in used:
            return f"{SUBNET_PREFIX}.{n}"
    raise RuntimeError(f"no free {SUBNET_PREFIX}.N.0/24 subnet")


@dataclass
class Host:
    name: str        # also its hostname
    netns: str
    address: str
    port: str        # its veth end on the bridge, in the services namespace


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Lab:
    tag: str
    subnet: str
    logs: Path
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    root_link: str | None = None
    pg_dir: Path | None = None

    @property
    def services(self) -> str:
        return f"ilk{self.tag}-svc"

    @property
    def services_address(self) -> str:
        return f"{self.subnet}.{SERVICES_HOST}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.services_address}:{REDIS_PORT}/0"

    @property
    def pg_url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.services_address}:{PG_PORT}/postgres"

    # --- the network ----------------------------------------------------------------------

    def build_services(self) -> None:
        self._add_netns(self.services)
        _ip("-n", self.services, "link", "set", "lo", "up")
        _ip("-n", self.services, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.services, "addr", "add", f"{self.services_address}/24", "dev", "br0")
        _ip("-n", self.services, "link", "set", "br0", "up")
        self.root_link = f"ilk{self.tag}rt"
        self._join(None, self.root_link, f"{self.subnet}.{ROOT_HOST}")

    def add_host(self, name: str) -> Host:
        netns = f"ilk{self.tag}-{name}"
        self._add_netns(netns)
        _ip("-n", netns, "link", "set", "lo", "up")
        address = f"{self.subnet}.{10 + len(self.hosts)}"
        port = self._join(netns, f"ilk{self.tag}h{len(self.hosts)}", address)
        host = Host(name=name, netns=netns, address=address, port=port)
        self.hosts[name] = host
        return host

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self.namespaces.append(name)

    def _join(self, netns: str | None, link: str, address: str) -> str:
        """A veth from ``netns`` (None: the root namespace) to the bridge; returns the name
        of its bridge end."""
        port = f"{link}p"
        _ip("link", "add", link, "type", "veth", "peer", "name", port)
        _ip("link", "set", port, "netns", self.services)
        _ip("-n", self.services, "link", "set", port, "master", "br0")
        _ip("-n", self.services, "link", "set", port, "up")
        inside = ["-n", netns] if netns else []
        if netns:
            _ip("link", "set", link, "netns", netns)
            _ip(*inside, "link", "set", link, "name", "eth0")
            link = "eth0"
        _ip(*inside, "addr", "add", f"{address}/24", "dev", link)
        _ip(*inside, "link", "set", link, "up")
        return port

    def cut(self, host: str) -> None:
        """Pull the host's cable: its bridge port goes down (its own eth0 loses carrier)."""
        _ip("-n", self.services, "link", "set", self.hosts[host].port, "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.services, "link", "set", self.hosts[host].port, "up")

    # --- processes ------------------------------------------------------------------------

    def spawn(self, host: str | None, name: str, argv: list[str],
              env: dict[str, str] | None = None) -> Proc:
        """``argv`` on ``host`` (None: the services namespace), in its own process group
        and, on a host, its own UTS namespace named after the host."""
        if host is None:
            prefix = ["ip", "netns", "exec", self.services]
        else:
            prefix = ["ip", "netns", "exec", self.hosts[host].netns, "unshare", "--uts", "--",
                      "sh", "-c", 'hostname "$0" && exec "$@"', host]
        log = self.logs / f"{name}.log"
        with log.open("wb") as sink:
            popen = subprocess.Popen([*prefix, *argv], env=env, stdout=sink,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def interlock(self, host: str, name: str, args: list[str], env: dict[str, str]) -> Proc:
        return self.spawn(host, name, [sys.executable, "-m", "interlock", *args], env)

    def start_redis(self, home: Path) -> Proc:
        proc = self.spawn(None, "redis", [
            "redis-server", "--bind", self.services_address, "--port", str(REDIS_PORT),
            "--save", "", "--appendonly", "no", "--dir", str(home), "--protected-mode", "no"])
        _wait(lambda: _redis_ping(self.redis_url), proc, "redis-server")
        return proc

    def start_postgres(self) -> Proc:
        """A cluster of its own (initdb into a temp dir owned by `postgres`), listening on
        the services address only, trusted from the lab's subnet alone."""
        binaries = pg_bin()
        assert binaries is not None
        self.pg_dir = Path(tempfile.mkdtemp(prefix=f"interlock-netns-{self.tag}-"))
        shutil.chown(self.pg_dir, "postgres", "postgres")
        data = self.pg_dir / "data"
        subprocess.run(["runuser", "-u", "postgres", "--", str(binaries / "initdb"), "-D",
                        str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True)
        with (data / "pg_hba.conf").open("w") as hba:
            hba.write(f"local all all trust\nhost all all {self.subnet}.0/24 trust\n")
        proc = self.spawn(None, "postgres", [
            "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
            str(binaries / "postgres"), "-D", str(data), "-p", str(PG_PORT),
            "-k", str(self.pg_dir), "-c", f"listen_addresses={self.services_address}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=200"])
        _wait(lambda: _pg_ready(self.pg_url), proc, "postgres")
        return proc

    def stop(self, proc: Proc, sig: int = signal.SIGTERM) -> None:
        with suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, sig)
        try:
            proc.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=15)

    def close(self) -> None:
        """Everything this lab made, in reverse; each step on its own so one failure does
        not leave the rest behind."""
        for proc in self.procs:    # all at once: each has its own grace period
            with suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            with suppress(Exception):
                self.stop(proc)
        for netns in reversed(self.namespaces):  # its links go with it
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        if self.root_link:
            subprocess.run(["ip", "link", "del", self.root_link], capture_output=True)
        if self.pg_dir is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)


@contextmanager
def lab(logs: Path) -> Iterator[Lab]:
    made = Lab(tag=secrets.token_hex(2), subnet=_free_subnet(), logs=logs)
    try:
        made.build_services()
        yield made
    finally:
        made.close()


def _wait(ready: object, proc: Proc, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{what} exited {proc.popen.returncode}:\n{proc.text()[-3000:]}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{proc.text()[-3000:]}")


def _redis_ping(url: str) -> bool:
    import redis
    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def _pg_ready(url: str) -> bool:
    import psycopg
    try:
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), connect_timeout=1):
            return True
    except psycopg.OperationalError:
        return False
