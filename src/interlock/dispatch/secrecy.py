"""What an adapter returns, with the node's secrets masked before the store keeps it.

The submitting worker knows the values it resolved; a later poll (another worker, maybe
another host) resolves the node's references again to know what to hide.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from interlock.adapters.contract import Handle, Observation
from interlock.adapters.masking import Masker
from interlock.secrets import masker_for
from interlock.spec.models import Flow

Result = TypeVar("Result", Handle, Observation)


def masked(result: Result, mask: Masker) -> Result:
    """Every text a handle or an observation carries, masked; ids are kept as they are."""
    if not mask:
        return result
    if isinstance(result, Handle):
        return replace(result, url=mask.text(result.url) if result.url else result.url,
                       data=mask.deep(result.data))
    return replace(result, handle=masked(result.handle, mask),
                   remote_status=mask.text(result.remote_status),
                   outputs=mask.deep(result.outputs),
                   error=mask.text(result.error) if result.error else result.error,
                   log_excerpt=mask.text(result.log_excerpt) if result.log_excerpt
                   else result.log_excerpt)


def node_masker(flow: Flow, node_id: str) -> Masker:
    """The masker for what a node's job reports (nothing to mask for most nodes)."""
    node = flow.nodes.get(node_id)
    return masker_for(node.with_) if node is not None else Masker(())
