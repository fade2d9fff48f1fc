"""OpenLineage identities of Interlock's runs, so foreign lineage events link back to them.

A flow run is the OpenLineage root run (job `<namespace>/<flow>`), each node attempt a
child run (job `<namespace>/<flow>.<node>`), all in the `interlock` job namespace. The ids
are UUIDs derived from Interlock's own ids, so anyone can compute them again.
"""

from __future__ import annotations

import uuid
from typing import Any

from interlock.adapters.contract import JobSpec

JOB_NAMESPACE = "interlock"
_ATTEMPTS = uuid.UUID("6f1e6a52-3b0c-4b8e-9a51-1c2d8f0e7a10")  # namespace of attempt ids


def run_uuid(run_id: str) -> str:
    """The OpenLineage run id of a flow run (run ids are UUIDs already)."""
    return str(uuid.UUID(run_id))


def attempt_uuid(key: str) -> str:
    return str(uuid.uuid5(_ATTEMPTS, key))


def node_job_name(flow: str, node_id: str) -> str:
    return f"{flow}.{node_id}"


def parent_run_facet(job: JobSpec, *, key: str) -> dict[str, Any]:
    """The OpenLineage `parent` run facet (with its `root`) naming attempt ``key`` of
    ``job`` as the parent: what a system's lineage events carry to link to Interlock.
    Adapters pass it on in the shape their system reads."""
    return {
        "run": {"runId": attempt_uuid(key)},
        "job": {"namespace": JOB_NAMESPACE, "name": node_job_name(job.flow, job.node_id)},
        "root": {"run": {"runId": run_uuid(job.run_id)},
                 "job": {"namespace": JOB_NAMESPACE, "name": job.flow}},
    }
