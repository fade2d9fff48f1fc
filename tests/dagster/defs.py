"""Dagster definitions for Interlock's integration tests (loaded by ``dagster dev -f``).

Runs inside the harness's Dagster virtualenv, never in the project's: only ``dagster`` and the
standard library may be imported here.

- ``interlock_ok_job``: ``extract`` (config ``rows``) -> ``score``; ``score`` emits an ``Output``
  with metadata ``{"score": 0.42, "rows": rows}`` (readable from the run's events).
- ``interlock_fail_job``: ``prepare`` succeeds, ``explode`` raises
  ``ValueError("risk model unavailable")``.
- ``interlock_flaky_job``: ``flaky`` fails in a run that is not a re-execution (no
  ``dagster/parent_run_id`` tag) and succeeds in a re-execution ("from failure"). With config
  ``marker`` set to a file path it fails instead exactly once: while that file does not exist
  (it creates it), so that a plain second launch succeeds too.
- ``interlock_slow_job``: ``nap`` sleeps ``seconds`` (default 20).
- assets ``raw_customers`` (metadata ``{"rows": 3}``) -> ``customer_scores``, the asset job
  ``customers_assets_job`` selecting both, and ``risk/sanctions_hits``: an external asset
  (``AssetSpec``) that no Dagster job materializes; it is reported as produced elsewhere.
- ``daily_orders``: partitioned by day (``2026-11-30``, ``2026-12-01``), metadata
  ``{"rows": 12, "day": <partition>}``, materialized by ``daily_orders_job`` with the tag
  ``dagster/partition``.
"""

# No ``from __future__ import annotations``: Dagster reads the Config classes from the real
# (not stringified) annotations.
import sys
import time
from pathlib import Path

import dagster as dg

# The push sensors shipped with the adapter, used as a user would: the module on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "adapters" / "interlock_dagster"
                       / "dagster_sensor"))
from interlock_sensor import interlock_push_assets, interlock_sensors  # noqa: E402

SCORE = 0.42
FAIL_MESSAGE = "risk model unavailable"
FLAKY_MESSAGE = "flaky failure: first attempt"


# --- interlock_ok_job -------------------------------------------------------------------------


class ExtractConfig(dg.Config):
    rows: int = 3


@dg.op
def extract(context: dg.OpExecutionContext, config: ExtractConfig) -> dict:
    context.log.info(f"extract rows={config.rows}")
    return {"rows": config.rows, "customers": [f"c{i}" for i in range(config.rows)]}


@dg.op(out=dg.Out(dict))
def score(context: dg.OpExecutionContext, extracted: dict):
    context.log.info(f"score input: {extracted}")
    value = {"score": SCORE, "rows": extracted["rows"]}
    yield dg.Output(value, metadata={"score": SCORE, "rows": extracted["rows"]})


@dg.job(tags={"interlock/test": "ok"})
def interlock_ok_job() -> None:
    score(extract())


# --- interlock_fail_job -----------------------------------------------------------------------


@dg.op
def prepare(context: dg.OpExecutionContext) -> int:
    context.log.info("prepare ok")
    return 1


@dg.op
def explode(context: dg.OpExecutionContext, prepared: int) -> int:
    raise ValueError(FAIL_MESSAGE)


@dg.job
def interlock_fail_job() -> None:
    explode(prepare())


# --- interlock_flaky_job ----------------------------------------------------------------------


class FlakyConfig(dg.Config):
    marker: str = ""


@dg.op
def setup(context: dg.OpExecutionContext) -> int:
    return 7


@dg.op
def flaky(context: dg.OpExecutionContext, config: FlakyConfig, seed: int) -> dict:
    if config.marker:
        marker = Path(config.marker)
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(context.run_id)
            raise RuntimeError(f"{FLAKY_MESSAGE} (marker {marker} created)")
    elif context.run.parent_run_id is None:
        raise RuntimeError(f"{FLAKY_MESSAGE} (not a re-execution)")
    context.log.info(f"flaky succeeded in run {context.run_id}")
    return {"seed": seed, "parent_run_id": context.run.parent_run_id}


@dg.job
def interlock_flaky_job() -> None:
    flaky(setup())


# --- interlock_slow_job -----------------------------------------------------------------------


class SlowConfig(dg.Config):
    seconds: float = 20.0


@dg.op
def nap(context: dg.OpExecutionContext, config: SlowConfig) -> float:
    context.log.info(f"sleeping {config.seconds}s")
    time.sleep(config.seconds)
    return config.seconds


@dg.job
def interlock_slow_job() -> None:
    nap()


# --- assets -----------------------------------------------------------------------------------


@dg.asset
def raw_customers(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log.info("raw_customers: 3 rows")
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset(deps=[raw_customers])
def customer_scores(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"score": SCORE})


sanctions_hits = dg.AssetSpec(
    key=dg.AssetKey(["risk", "sanctions_hits"]),
    description="Produced outside Dagster (reported to it as a runless materialization).",
)

@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["2026-11-30", "2026-12-01"]))
def daily_orders(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """A partitioned asset: a run of `daily_orders_job` tagged `dagster/partition`."""
    return dg.MaterializeResult(metadata={"rows": 12, "day": context.partition_key})


daily_orders_job = dg.define_asset_job("daily_orders_job", selection=[daily_orders],
                                       partitions_def=daily_orders.partitions_def)

# The hook pushes each step's materializations when the step succeeds; the sensors push the
# finished run (both in interlock_sensor.py).
customers_assets_job = dg.define_asset_job(
    "customers_assets_job", selection=dg.AssetSelection.assets(raw_customers, customer_scores),
    hooks={interlock_push_assets},
)

defs = dg.Definitions(
    assets=[raw_customers, customer_scores, sanctions_hits, daily_orders],
    jobs=[interlock_ok_job, interlock_fail_job, interlock_flaky_job, interlock_slow_job,
          customers_assets_job, daily_orders_job],
    sensors=interlock_sensors(),  # none unless the harness sets INTERLOCK_EVENTS_URL
)


# --- interlock_hostile_job (tests/test_hostile_values.py) -------------------------------------
# ``hostile_emit`` yields an ``Output`` whose text metadata ``p_<name>`` are hostile values
# (shell metacharacters, option and ``../`` injection, template syntax, a NUL byte): the
# test's ``PAYLOADS``, copied here as a foreign system sends its own values.

HOSTILE_PAYLOADS = {
    "semicolon": "2026-01-01; id > pwned-semicolon; id",
    "subst": "$(id > pwned-subst)",
    "backtick": "`id > pwned-backtick`",
    "newline": "2026-01-01\nid > pwned-newline\nid",
    "and": "x && id > pwned-and",
    "pipe": "x | tee pwned-pipe",
    "squote": "' ; id > pwned-squote; echo '",
    "dquote": '" ; id > pwned-dquote; echo "',
    "option": "--outputdir=pwned-outdir",
    "dash_c": "-c",
    "dotdot": "../../outside-vars.yaml",
    "jinja": "{{ 7 * 7 }}",
    "robot_eval": "${{ __import__('os').system('id > pwned-robot-eval') }}",
    "secret": "{{ secret('HOSTILE_TEST_SECRET') }}",
    "nul": "x\x00; id > pwned-nul",
}


@dg.op(out=dg.Out(dict))
def hostile_emit(context: dg.OpExecutionContext):
    metadata = {f"p_{name}": dg.MetadataValue.text(value)
                for name, value in HOSTILE_PAYLOADS.items()}
    yield dg.Output({"emitted": len(metadata)}, metadata=metadata)


@dg.job
def interlock_hostile_job() -> None:
    hostile_emit()


defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[interlock_hostile_job]))
