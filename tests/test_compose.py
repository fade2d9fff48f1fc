"""docker-compose.yml runs every long-lived Interlock process, each with a command the CLI has.

Before the `scheduler` service was added, the compose file ran only `serve` and `worker`:
nothing ran `interlock scheduler`, so flows' `schedule:` triggers never fired there.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
import yaml
from typer.core import TyperGroup

from interlock.cli.main import app
from tests.conftest import ROOT

# Service -> the `interlock` subcommand it must run. Each is a process a deployment needs.
INTERLOCK_SERVICES = {"api": "serve", "worker": "worker", "scheduler": "scheduler"}


def _services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services: dict[str, Any] = compose["services"]
    return services


def _cli() -> TyperGroup:
    return typer.main.get_group(app)  # the command group `interlock` really runs, plugins too


@pytest.mark.parametrize(("service", "subcommand"), sorted(INTERLOCK_SERVICES.items()))
def test_each_interlock_process_has_a_service(service: str, subcommand: str) -> None:
    services = _services()
    assert service in services, f"docker-compose.yml has no `{service}` service"
    command = services[service]["command"]
    assert command[:2] == ["interlock", subcommand], (
        f"service `{service}` runs {command}, not `interlock {subcommand}`")


def test_every_interlock_service_runs_a_command_the_cli_has() -> None:
    """Parses each service's arguments with the CLI itself: an unknown subcommand or option
    (a rename in `interlock.cli.main`) fails here rather than in a container at start-up."""
    cli = _cli()
    env = _services()["api"]["environment"]
    for name, service in _services().items():
        command = service.get("command") or []
        if command[:1] != ["interlock"]:
            continue  # postgres, redis
        assert service.get("environment") == env, f"`{name}` is not given the shared env"
        subcommand, *args = command[1:]
        assert subcommand in cli.commands, (
            f"service `{name}` runs `interlock {subcommand}`, which the CLI does not have "
            f"(it has: {', '.join(sorted(cli.commands))})")
        # Checks the options and their values without running the command.
        cli.commands[subcommand].make_context(subcommand, list(args), parent=None)


def test_the_api_is_published_on_loopback_unless_told_otherwise() -> None:
    """`ports: ["8000:8000"]` publishes on every interface; the default must be 127.0.0.1,
    overridable with INTERLOCK_PUBLISH (docs/deploy.md)."""
    ports = _services()["api"]["ports"]
    assert ports, "the api service publishes nothing"
    for binding in ports:
        assert isinstance(binding, str), f"use the short syntax with a host address: {binding}"
        host, _, rest = binding.rpartition(":8000-8001:")  # host may be ${VAR:-default}
        assert rest == "8000" and host, f"no host address in {binding!r}"
        default = host.removeprefix("${INTERLOCK_PUBLISH:-").removesuffix("}")
        assert default == "127.0.0.1", f"{binding!r} does not default to loopback"
    for name, service in _services().items():  # no other service is published at all
        if name != "api":
            assert "ports" not in service, f"`{name}` publishes ports"


# The deployment users run (docs/operations.md): how many of each, and which answer probes.
REPLICAS = {"api": 2, "worker": 2, "scheduler": 2}


@pytest.mark.parametrize(("service", "count"), sorted(REPLICAS.items()))
def test_each_interlock_process_runs_twice_so_one_can_die(service: str, count: int) -> None:
    assert _services()[service]["deploy"]["replicas"] >= count


def test_every_service_restarts_when_it_dies() -> None:
    for name, service in _services().items():
        assert service.get("restart") in ("unless-stopped", "always"), f"`{name}` restart"


def test_the_workers_health_check_is_a_command_the_cli_has() -> None:
    check = _services()["worker"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "interlock", "worker-ping"], check
    cli = _cli()
    cli.commands["worker-ping"].make_context("worker-ping", list(check[3:]), parent=None)
