"""`fraud_weekly_retrain`: retrain on what was known at the week's end, then report the gate.

The retrain task launches the Prefect retrain deployment and waits for it (a failed run fails
the task with the Prefect state and URL). The promotion gate lives in the flow: a new version
becomes `champion` only if it beats the current one on the same holdout; otherwise it is
`challenger`.

Point in time: the retrain trains as of the run's data-interval end (the cut): on events
older than the cut by the label delay (`FRAUDPIPE_LABEL_DELAY_DAYS`), each with its latest
label known at the cut. A re-run of a week therefore trains on the same rows, and returns the
version that week registered.

Schedule: weekly, Sunday midnight UTC, for the week just over. `catchup` is off on purpose: a
backfilled week would be reproducible, but it registers a model trained on old knowledge that
the gate then weighs against today's champion; a past week is retrained on purpose, with
`airflow dags backfill` or a triggered run, not because the DAG was paused.

Params: `model` (`logreg` or the `hgb` challenger) and `sample` (train on a stratified fraction
of the training window, for quick runs; the holdout stays whole).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

log = logging.getLogger(__name__)


def _logical_key() -> str:
    context = get_current_context()
    return f"{context['dag'].dag_id}:{context['logical_date'].date().isoformat()}"


@dag(
    dag_id="fraud_weekly_retrain",
    description="Retrain the fraud model weekly; promote only a better model.",
    # The run for the week starting Sunday W has logical date W and starts when the week ends.
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=datetime(2025, 9, 21, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args={
        "owner": "fraudpipe",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
    },
    params={
        "model": Param(
            "logreg", enum=["logreg", "hgb"], description="logreg or the hgb challenger"
        ),
        "sample": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=1,
            description="Train on this stratified fraction of the training window (quick runs)",
        ),
    },
    tags=["fraudpipe", "weekly"],
    doc_md=__doc__,
)
def fraud_weekly_retrain() -> None:
    @task
    def champion_before() -> int | None:
        from fraudpipe.config import get_settings
        from fraudpipe.orchestration import pipeline

        return pipeline.champion_version(get_settings())

    @task(execution_timeout=timedelta(hours=2))
    def retrain() -> dict[str, Any]:
        from fraudpipe.config import get_settings
        from fraudpipe.orchestration import pipeline

        context = get_current_context()
        params = context["params"]
        run = pipeline.retrain(
            get_settings(),
            logical_key=_logical_key(),
            model=params["model"],
            sample=params["sample"],
            cut=context["data_interval_end"],
            origin=pipeline.airflow_origin(
                context["dag"].dag_id, context["run_id"], context["ti"].task_id
            ),
        )
        return {"flow_run": run.url, "state": run.state_name}

    @task
    def report(before: int | None, retrained: dict[str, Any]) -> dict[str, Any]:
        from fraudpipe.config import get_settings
        from fraudpipe.orchestration import pipeline

        outcome = pipeline.retrain_report(get_settings(), before).as_dict()
        verdict = "moved" if outcome["champion_moved"] else "stayed"
        log.info(
            f"champion {verdict}: v{outcome['champion_before']} -> v{outcome['champion_after']}; "
            f"latest version v{outcome['latest_version']} is {outcome['decision']} "
            f"({outcome['reason']}); flow run {retrained['flow_run']}"
        )
        return outcome

    before = champion_before()
    retrained = retrain()
    before >> retrained  # read the champion before the retrain can move it
    report(before, retrained)


fraud_weekly_retrain()
