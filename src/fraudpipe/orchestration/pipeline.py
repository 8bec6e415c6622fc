"""The steps the Airflow DAGs run, as plain functions: each launches a Prefect deployment or
reads what the pipeline wrote. The DAG files only wire these to tasks.

Which source feeds a day: the ULB dataset holds 2025-09-20 and 2025-09-21; every later day is
synthetic (`synthetic-s<seed>`), unless a DAG run names a source itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fraudpipe.adapters.postgres.reporting import BatchOutcome, app_engine, batch_outcomes
from fraudpipe.config import Settings
from fraudpipe.errors import IngestRequestError
from fraudpipe.orchestration.deployments import (
    INGEST_DEPLOYMENT,
    PUBLISH_DEPLOYMENT,
    RETRAIN_DEPLOYMENT,
)
from fraudpipe.orchestration.prefect_runs import FlowRunResult, run_deployment_and_wait

#: Seed of the synthetic days the DAG ingests when a run does not name one (ingestion's own
#: default, so `fraudpipe ingest --source synthetic` and the DAG load the same days).
DEFAULT_SYNTHETIC_SEED = 7
#: `source` value that picks ULB for its two days and synthetic days after.
AUTO_SOURCE = "auto"

INGEST_TIMEOUT_SECONDS = 30 * 60.0
PUBLISH_TIMEOUT_SECONDS = 30 * 60.0
RETRAIN_TIMEOUT_SECONDS = 90 * 60.0


@dataclass(frozen=True)
class DailyTarget:
    """The batch a daily run works on.

    Attributes:
        day: The calendar day (UTC) of event time.
        source: The source's name as it appears in ids (`ulb`, `synthetic-s7`, `file:<stem>`).
        batch_id: `<source>:<day>`.
        ingest_parameters: What the ingest deployment is run with.
    """

    day: date
    source: str
    batch_id: str
    ingest_parameters: dict[str, Any]


def daily_target(
    day: date,
    source: str = AUTO_SOURCE,
    synthetic_seed: int = DEFAULT_SYNTHETIC_SEED,
    drift_from: date | None = None,
) -> DailyTarget:
    """Resolve a DAG run's `source` parameter into the batch it loads.

    Args:
        day: The run's logical date.
        source: `auto`, `ulb`, `synthetic`, or a path to a CSV/Parquet file (as the worker sees
            it).
        synthetic_seed: The seed of synthetic days.
        drift_from: Synthetic days drift from this day on (`data.synthetic.DriftScenario`).

    Raises:
        IngestRequestError: `ulb` or `synthetic` asked for a day it does not cover.
    """
    from pathlib import Path

    from fraudpipe.data.files import FileSource
    from fraudpipe.data.resolve import SYNTHETIC_SPEC, ULB_SPEC
    from fraudpipe.data.synthetic import (
        FIRST_SYNTHETIC_DAY,
        DriftScenario,
        synthetic_source_name,
    )
    from fraudpipe.data.ulb import ULB_ROWS_PER_DAY
    from fraudpipe.ids import batch_id

    spec = source
    if source == AUTO_SOURCE:
        spec = ULB_SPEC if day in ULB_ROWS_PER_DAY else SYNTHETIC_SPEC
    params: dict[str, Any] = {"source": spec, "day": day.isoformat()}
    if spec == ULB_SPEC:
        if day not in ULB_ROWS_PER_DAY:
            days = ", ".join(d.isoformat() for d in sorted(ULB_ROWS_PER_DAY))
            raise IngestRequestError(f"the ULB dataset holds {days}, not {day.isoformat()}")
        name = ULB_SPEC
    elif spec == SYNTHETIC_SPEC:
        if day < FIRST_SYNTHETIC_DAY:
            raise IngestRequestError(
                f"synthetic days start on {FIRST_SYNTHETIC_DAY.isoformat()}, not {day.isoformat()}"
            )
        drift = DriftScenario(drift_from) if drift_from is not None else None
        name = synthetic_source_name(synthetic_seed, drift)
        params["seed"] = synthetic_seed
        if drift_from is not None:
            params["drift_from"] = drift_from.isoformat()
    else:
        name = FileSource(Path(spec)).name
    return DailyTarget(day=day, source=name, batch_id=batch_id(name, day), ingest_parameters=params)


def airflow_origin(dag_id: str, run_id: str, task_id: str) -> list[str]:
    """Prefect tags that link a flow run back to the Airflow task that launched it (the
    Airflow task's log holds the flow run's URL the other way)."""
    return [f"airflow-dag:{dag_id}", f"airflow-run:{run_id}", f"airflow-task:{task_id}"]


def ingest(
    settings: Settings, target: DailyTarget, *, logical_key: str, origin: Sequence[str] = ()
) -> FlowRunResult:
    """Run the ingest deployment for the target's day and wait for it."""
    return run_deployment_and_wait(
        settings,
        INGEST_DEPLOYMENT,
        target.ingest_parameters,
        logical_key=logical_key,
        origin=origin,
        timeout=INGEST_TIMEOUT_SECONDS,
    )


def publish(
    settings: Settings, batch_id: str, *, logical_key: str, origin: Sequence[str] = ()
) -> FlowRunResult:
    """Run the publish deployment for one batch and wait for it."""
    return run_deployment_and_wait(
        settings,
        PUBLISH_DEPLOYMENT,
        {"batch_id": batch_id},
        logical_key=logical_key,
        origin=origin,
        timeout=PUBLISH_TIMEOUT_SECONDS,
    )


def retrain(
    settings: Settings,
    *,
    logical_key: str,
    model: str = "logreg",
    sample: float | None = None,
    cut: datetime | None = None,
    origin: Sequence[str] = (),
) -> FlowRunResult:
    """Run the retrain deployment (labelled history as of `cut` → gate) and wait for it.

    Args:
        settings: Where Prefect is, and the run scope.
        logical_key: What makes two calls the same run (the weekly DAG's logical date).
        model: `logreg` or the `hgb` challenger.
        sample: Train on this stratified fraction of the training window (None: all of it).
        cut: Train on what was known at this moment (None: now).
    """
    return run_deployment_and_wait(
        settings,
        RETRAIN_DEPLOYMENT,
        {"model": model, "sample": sample, "cut": cut.isoformat() if cut else None},
        logical_key=logical_key,
        origin=origin,
        timeout=RETRAIN_TIMEOUT_SECONDS,
    )


def batch_report(settings: Settings, batch_id: str) -> BatchOutcome:
    """The numbers of one batch (rows, frauds, flagged, caught, false alarms, versions).

    Raises:
        BatchNotFoundError: no such batch.
    """
    from fraudpipe.errors import BatchNotFoundError

    engine = app_engine(settings)
    try:
        found = batch_outcomes(engine, [batch_id])
    finally:
        engine.dispose()
    if not found:
        raise BatchNotFoundError(batch_id)
    return found[0]


def measure_drift(settings: Settings, batch_id: str) -> list[dict[str, Any]]:
    """Drift of a scored batch per version that scored it, stored (`monitoring.batch_drift`).

    Returns one summary per version: rows, alert rate and expected rate, and the column that
    moved most with its PSI.
    """
    from fraudpipe.monitoring.batch_drift import measure_batch_drift

    summaries = []
    for m in measure_batch_drift(settings, batch_id):
        worst, psi = m.worst()
        summaries.append(
            {
                "model_version": m.model_version,
                "rows": m.rows,
                "alert_rate": m.alert_rate,
                "expected_alert_rate": m.expected_alert_rate,
                "worst_feature": worst,
                "worst_psi": psi,
                "score_psi": m.psi["score"],
            }
        )
    return summaries


def champion_version(settings: Settings) -> int | None:
    """The version serving now (the `champion` alias), None before the first training."""
    from fraudpipe.adapters.mlflow.registry import current_serving_version

    return current_serving_version(settings)


def shadow_version(settings: Settings) -> int | None:
    """The version scoring in shadow (`shadow_alias`), None when none holds it or it is unset."""
    from fraudpipe.adapters.mlflow.registry import current_serving_version

    if not settings.shadow_alias:
        return None
    return current_serving_version(
        settings.model_copy(update={"serving_alias": settings.shadow_alias})
    )


@dataclass(frozen=True)
class RetrainReport:
    """What a weekly retrain changed.

    Attributes:
        champion_before: Serving version before the retrain.
        champion_after: Serving version after it.
        latest_version: The newest registered version (the retrain's, or the one it matched).
        decision: That version's promotion decision tag (`champion`/`challenger`).
        reason: Why, as the gate wrote it.
    """

    champion_before: int | None
    champion_after: int | None
    latest_version: int | None
    decision: str
    reason: str

    @property
    def moved(self) -> bool:
        return self.champion_before != self.champion_after

    def as_dict(self) -> dict[str, Any]:
        return {
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "champion_moved": self.moved,
            "latest_version": self.latest_version,
            "decision": self.decision,
            "reason": self.reason,
        }


def retrain_report(settings: Settings, champion_before: int | None) -> RetrainReport:
    """Compare the champion with the one before the retrain, and quote the gate's decision."""
    from fraudpipe.adapters.mlflow.registry import list_versions

    versions = list_versions(settings)  # newest first
    latest = versions[0] if versions else None
    return RetrainReport(
        champion_before=champion_before,
        champion_after=champion_version(settings),
        latest_version=latest.version if latest else None,
        decision=latest.tags.get("promotion_decision", "") if latest else "",
        reason=latest.tags.get("promotion_reason", "") if latest else "",
    )
