"""`fraud_daily`: one day of transactions through the pipeline.

ingest the logical date's batch → publish it to Kafka → wait until the scoring service has
scored it → report its numbers, and measure its drift against the scoring version's training
profile (PSI per feature and for the score, and the alert rate; stored in PostgreSQL).

Ingest and publish each launch a Prefect deployment and wait for the flow run (a failed run
fails the task with the Prefect state and the run's URL); the wait is a deferrable sensor on
the `batches` table. Every step is idempotent, so re-running a day changes nothing.

Schedule: daily at midnight UTC for the day just over (data-interval semantics). `catchup` is
off on purpose: a new stack would otherwise backfill every day since 2025-09-20, more than a
year of synthetic days, the moment the DAG is unpaused. History is loaded by triggering runs
for chosen logical dates (`make demo` does, through the REST API). One run at a time, so days
are published in order.

Params: `source` = `auto` (ULB for 2025-09-20/21, synthetic after), `ulb`, `synthetic`, or a
CSV/Parquet path; `synthetic_seed` for synthetic days; `drift_from`, a day from which synthetic
days drift (`fraudpipe.data.synthetic.DriftScenario`; its batches are named apart).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from fraudpipe.orchestration.airflow_sensors import BatchStatusSensor

log = logging.getLogger(__name__)


def _origin() -> list[str]:
    from fraudpipe.orchestration.pipeline import airflow_origin

    context = get_current_context()
    return airflow_origin(context["dag"].dag_id, context["run_id"], context["ti"].task_id)


def _logical_day_key() -> tuple[Any, str]:
    context = get_current_context()
    logical_date = context["logical_date"]
    return logical_date.date(), f"{context['dag'].dag_id}:{logical_date.date().isoformat()}"


@dag(
    dag_id="fraud_daily",
    description="Ingest, publish and score one day of card transactions.",
    # Data-interval semantics: the run for day D starts once D is over and has logical date D.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2025, 9, 20, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=4),
    default_args={
        "owner": "fraudpipe",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    params={
        "source": Param("auto", type="string", description="auto, ulb, synthetic or a file path"),
        "synthetic_seed": Param(7, type="integer", minimum=0),
        "drift_from": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Synthetic days drift from this day on (YYYY-MM-DD; the drift scenario)",
        ),
    },
    tags=["fraudpipe", "daily"],
    doc_md=__doc__,
)
def fraud_daily() -> None:
    @task(execution_timeout=timedelta(minutes=45))
    def ingest() -> dict[str, Any]:
        from fraudpipe.config import get_settings
        from fraudpipe.orchestration import pipeline

        day, key = _logical_day_key()
        params = get_current_context()["params"]
        drift = params.get("drift_from")
        target = pipeline.daily_target(
            day,
            params["source"],
            int(params["synthetic_seed"]),
            date.fromisoformat(drift) if drift else None,
        )
        run = pipeline.ingest(get_settings(), target, logical_key=key, origin=_origin())
        return {"batch_id": target.batch_id, "day": day.isoformat(), "flow_run": run.url}

    @task(execution_timeout=timedelta(minutes=45))
    def publish(ingested: dict[str, Any]) -> dict[str, Any]:
        from fraudpipe.config import get_settings
        from fraudpipe.orchestration import pipeline

        _, key = _logical_day_key()
        run = pipeline.publish(
            get_settings(), ingested["batch_id"], logical_key=key, origin=_origin()
        )
        return {**ingested, "flow_run": run.url}

    wait_scored = BatchStatusSensor(
        task_id="wait_scored",
        batch_id="{{ ti.xcom_pull(task_ids='publish')['batch_id'] }}",
        status="scored",
        poll_seconds=5,
        timeout=int(timedelta(hours=2).total_seconds()),
        retries=0,
    )

    @task
    def report(published: dict[str, Any]) -> dict[str, Any]:
        from fraudpipe.config import get_settings
        from fraudpipe.orchestration import pipeline

        outcome = pipeline.batch_report(get_settings(), published["batch_id"]).as_dict()
        log.info(
            "batch {batch_id}: {rows} rows, {frauds} labelled frauds, {flagged} flagged, "
            "{caught} caught, {false_alarms} false alarms, model versions {model_versions}".format(
                **outcome
            )
        )
        return outcome

    @task
    def drift(published: dict[str, Any]) -> list[dict[str, Any]]:
        from fraudpipe.config import get_settings
        from fraudpipe.orchestration import pipeline

        measured = pipeline.measure_drift(get_settings(), published["batch_id"])
        for m in measured:
            log.info(
                "batch {batch_id}, v{model_version}: alert rate {alert_rate:.4%} (expected "
                "{expected_alert_rate:.4%}), score PSI {score_psi:.3f}, most moved "
                "{worst_feature} PSI {worst_psi:.3f}".format(batch_id=published["batch_id"], **m)
            )
        return measured

    published = publish(ingest())
    published >> wait_scored >> [report(published), drift(published)]


fraud_daily()
