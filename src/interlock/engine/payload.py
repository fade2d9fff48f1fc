"""What an approval is bound to: a hash of exactly what the gate showed and will release.

The hash covers the node's definition, its rendered `with:` and the rendered subject and
body (which show the inputs the approver saw). A retry whose values differ, or another flow
revision whose node differs, gives another hash: the old approval is void.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from interlock.spec.models import Node


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False).encode()


def payload_hash(node_id: str, node: Node, params: dict[str, Any], subject: str,
                 body: str) -> str:
    document = {"node": node_id, "definition": node.model_dump(mode="json", by_alias=True),
                "with": params, "subject": subject, "body": body}
    return hashlib.sha256(canonical(document)).hexdigest()


def inputs_hash(inputs: dict[str, Any]) -> str:
    """Votes count together only for the same option with the same inputs."""
    return hashlib.sha256(canonical(inputs)).hexdigest()
