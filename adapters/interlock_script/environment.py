"""The environment a script sees: a small allow-list, never the worker's whole env.

Workers hold credentials (broker, database, cloud) in their environment; a script
gets them only when its node names them in `inherit_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from interlock_script.records import RunSpec

BASE_NAMES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "VIRTUAL_ENV")

ENV_RUN_ID = "INTERLOCK_RUN_ID"
ENV_NODE_ID = "INTERLOCK_NODE_ID"
ENV_ATTEMPT = "INTERLOCK_ATTEMPT"
ENV_OUTPUT = "INTERLOCK_OUTPUT"
ENV_TRACEPARENT = "TRACEPARENT"


def build_env(spec: RunSpec, own: Mapping[str, str], outputs_path: str) -> dict[str, str]:
    names = (*BASE_NAMES, *spec.inherit_env)
    env = {name: own[name] for name in names if name in own}
    env.setdefault("PATH", os.defpath)
    env.update(spec.env)
    # Set last: a node's `env:` must not be able to fake which run it belongs to.
    env.update({
        ENV_RUN_ID: spec.run_id,
        ENV_NODE_ID: spec.node_id,
        ENV_ATTEMPT: str(spec.attempt),
        ENV_TRACEPARENT: spec.traceparent,
        ENV_OUTPUT: outputs_path,
    })
    return env
