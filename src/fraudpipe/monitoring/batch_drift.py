"""Drift of one scored batch: each version that scored it against its own training profile.

Run once a batch is scored (the daily DAG's ``drift`` task, or `fraudpipe monitor drift`). It
reads the batch's rows as each version scored them, compares them with the reference profile
logged with that version (`fraudpipe.model.drift`), stores PSI per column and the alert rate in
PostgreSQL, and pushes them to the Pushgateway as gauges for Prometheus. Idempotent: a second
run for the same batch finds the same numbers, stores nothing new and pushes the same gauges.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from fraudpipe.adapters.mlflow.references import reference_profile
from fraudpipe.adapters.postgres.drift import record_drift, scored_rows
from fraudpipe.adapters.postgres.reporting import app_engine
from fraudpipe.adapters.prometheus.push import push_drift
from fraudpipe.config import Settings
from fraudpipe.model.drift import VersionDrift, measure

log = structlog.get_logger(__name__)


def measure_batch_drift(
    settings: Settings, batch_id: str, now: datetime | None = None
) -> list[VersionDrift]:
    """PSI per column and alert rate of ``batch_id``, per version that scored it; stored and
    pushed.

    A version trained before reference profiles existed is skipped (and logged).

    Raises:
        ServiceUnavailableError: PostgreSQL, MLflow or the Pushgateway is not reachable.
        ModelRegistryError: A version's profile is malformed.
    """
    engine = app_engine(settings)
    try:
        measured = []
        for rows in scored_rows(engine, batch_id):
            own = settings.model_copy(update={"model_name": rows.model_name})
            reference = reference_profile(own, rows.model_version)
            if reference is None:
                log.warning(
                    "no reference profile: drift not measured",
                    batch_id=batch_id,
                    model_version=rows.model_version,
                )
                continue
            measured.append(
                measure(
                    reference,
                    rows.model_name,
                    rows.model_version,
                    rows.columns,
                    rows.scores,
                    rows.alerts,
                )
            )
        at = now or datetime.now(UTC)
        record_drift(engine, batch_id, measured, at)
    finally:
        engine.dispose()
    if measured:
        push_drift(settings, batch_id, measured, at)
    return measured
