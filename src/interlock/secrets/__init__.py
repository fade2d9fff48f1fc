"""Secrets as references: `{{ secret('NAME') }}` in a node's `with:`, resolved in the worker.

A flow names a secret; only the worker that submits the attempt asks a backend for its
value, hands it to the adapter, and masks it in whatever comes back (errors, outputs, logs).
Run records, attempts, events, lineage, trace and the audit hold the reference alone.

    backends.py   where values live: `env` and `file` built in, more through the
                  `interlock.secrets` entry-point group
    resolve.py    a node's references -> values and the masker that hides them
"""

from interlock.secrets.backends import SecretNotFound, SecretsBackend, backend
from interlock.secrets.resolve import Resolved, masker_for, resolve

__all__ = ["Resolved", "SecretNotFound", "SecretsBackend", "backend", "masker_for", "resolve"]
