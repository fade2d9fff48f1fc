"""Where a job or asset lives: its code location and repository, found when not given."""

from __future__ import annotations

from typing import Any

from interlock.adapters import Rejected
from interlock_dagster import queries
from interlock_dagster.client import GraphQLSession
from interlock_dagster.params import DagsterParams

ASSET_JOB = "__ASSET_JOB"  # Dagster's implicit job that can materialize any asset selection


def repositories(s: GraphQLSession) -> list[dict[str, Any]]:
    data = s.query(queries.REPOSITORIES)["repositoriesOrError"]
    if data["__typename"] != "RepositoryConnection":
        raise Rejected(f"{s.system.name}: {data.get('message')}")
    return list(data["nodes"])


def selector(s: GraphQLSession, params: DagsterParams) -> dict[str, Any]:
    """The launch selector; Rejected naming what is missing and where."""
    repos = [r for r in repositories(s)
             if params.location in (None, r["location"]["name"])
             and params.repository in (None, r["name"])]
    if not repos:
        raise Rejected(f"{s.system.name} has no code location {params.location!r}"
                       + (f" with repository {params.repository!r}" if params.repository
                          else ""))
    if params.job is not None:
        repo = _holding(repos, lambda r: params.job in {j["name"] for j in r["jobs"]})
        if repo is None:
            raise Rejected(f"job {params.job!r} does not exist on {s.system.name}")
        return _selector(repo, params.job, op_selection=params.op_selection)
    wanted = {tuple(p) for p in params.asset_paths()}
    repo = _holding(repos, lambda r: wanted <= {tuple(a["assetKey"]["path"])
                                                 for a in r["assetNodes"]})
    if repo is None:
        known = {"/".join(a["assetKey"]["path"]) for r in repos for a in r["assetNodes"]}
        missing = sorted({"/".join(p) for p in wanted} - known)
        raise Rejected(f"asset(s) {', '.join(missing) or params.assets} not found in one code "
                       f"location of {s.system.name}")
    sel = _selector(repo, ASSET_JOB)
    sel["assetSelection"] = [{"path": list(p)} for p in params.asset_paths()]
    return sel


def _holding(repos: list[dict[str, Any]], test: Any) -> dict[str, Any] | None:
    return next((r for r in repos if test(r)), None)


def _selector(repo: dict[str, Any], job: str, *, op_selection: list[str] | None = None,
              ) -> dict[str, Any]:
    sel: dict[str, Any] = {"repositoryLocationName": repo["location"]["name"],
                           "repositoryName": repo["name"], "jobName": job}
    if op_selection:
        sel["solidSelection"] = op_selection
    return sel
