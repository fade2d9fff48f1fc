"""The adapter SDK: everything an adapter package may use of Interlock, in one place.

Adapters (`adapters/interlock_<kind>/`) import only from `interlock.adapters`: the contract
they implement, the errors and states they report, the registered systems and their HTTP
session pool, status mappings (`mapping_file`: the user's override, else the adapter's
packaged default), the cached configuration-file loader (`load_yaml`, `cached_file`), the
push-signing helper, OpenLineage run identities, `paths` (the one check that a path
from outside stays inside its root), the known cron jobs and
cron's schedule macros, a read API over what the store observed, and `launch_once` (one
launch per attempt key across workers, for systems that cannot be given the job's id).
`tests/test_architecture.py` fails if an adapter reaches past this package.
"""

from interlock import clock
from interlock.adapters import openlineage, paths, signing
from interlock.adapters.contract import (
    Adapter,
    AssetBatch,
    AssetEvent,
    ForeignAction,
    ForeignApproval,
    ForeignEvent,
    Handle,
    JobSpec,
    LogChunk,
    Observation,
    RemoteJob,
    RetryMode,
)
from interlock.adapters.launches import launch_once
from interlock.adapters.observed import ObservedRun, observed
from interlock.adapters.registry import AdapterRegistry, default_registry
from interlock.adapters.systems import SessionPool, poll_by_system, registered
from interlock.config import cron_macros
from interlock.config.cron_jobs import CronJob, CronJobsError, UnknownCronJob, get_job
from interlock.config.durations import parse_duration
from interlock.config.env import settings
from interlock.config.files import cached_file, load_yaml
from interlock.config.mappings import StatusMapping, mapping_file, mappings_dir
from interlock.config.secret_refs import SecretError, SecretRef
from interlock.config.systems import System, UnknownSystem, load_systems
from interlock.errors import AdapterError, Conflict, InterlockError, Problem, Rejected, Transient
from interlock.states import NODE_TERMINAL, NodeState

__all__ = [
    "NODE_TERMINAL", "Adapter", "AdapterError", "AdapterRegistry", "AssetBatch", "AssetEvent",
    "Conflict", "CronJob", "CronJobsError",
    "ForeignAction", "ForeignApproval", "ForeignEvent", "Handle", "InterlockError", "JobSpec",
    "LogChunk", "NodeState", "Observation", "ObservedRun", "Problem", "Rejected", "RemoteJob",
    "RetryMode", "SecretError", "SecretRef", "SessionPool", "StatusMapping", "System", "Transient",
    "UnknownCronJob", "UnknownSystem", "cached_file", "clock", "cron_macros",
    "default_registry", "get_job", "launch_once", "load_systems", "load_yaml", "mapping_file",
    "mappings_dir", "observed", "openlineage", "parse_duration", "paths", "poll_by_system",
    "registered",
    "settings", "signing",
]
