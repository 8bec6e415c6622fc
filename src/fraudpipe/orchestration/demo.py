"""`fraudpipe demo`: bootstrap the pipeline, then drive it through Airflow day by day.

Days: the two ULB days (2025-09-20/21), then two weeks of synthetic days (2025-09-22 … 10-05)
that drift from 2025-09-24 on (`DriftScenario`), one `fraud_daily` run each, with one
`fraud_weekly_retrain` after the first full week. Each run is triggered through Airflow's REST
API on the stack's own Airflow (scheduler, LocalExecutor, triggerer), with its logical date and
conf, and waited for: the Airflow UI shows every run, task and log, and each task's Prefect flow
run (ingest, publish, retrain) runs on the stack's worker.
A scoring service runs in the background the whole time.

The demo unpauses both DAGs, so they also run on their real schedules from then on: the
scheduler's own run for yesterday (a synthetic day, `source=auto`) and the latest week's retrain
happen beside the demo's days, as they would in a bank that switched the pipeline on today.

Every step is idempotent, so a second demo adds nothing: a day whose run exists is not triggered
again (Airflow refuses a second run for a logical date), a failed run has its failed tasks
cleared and re-run, and the totals before and after say what changed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudpipe.adapters.postgres.reporting import BatchOutcome
from fraudpipe.config import Settings
from fraudpipe.errors import DemoStepError
from fraudpipe.orchestration.airflow_runner import DagRunOutcome

if TYPE_CHECKING:
    from fraudpipe.adapters.airflow.api import AirflowClient, DagRun
from fraudpipe.orchestration.pipeline import DailyTarget, RetrainReport, daily_target
from fraudpipe.orchestration.scorer_process import ScorerProcess

FIRST_DAY = date(2025, 9, 20)
LAST_DAY = date(2025, 10, 5)
#: The weekly retrain runs once this day is through, and the last demo day is scored by what
#: it decided.
RETRAIN_AFTER = date(2025, 10, 4)
#: Logical date of that weekly run: the week starting Sunday 2025-09-28. Its data interval ends
#: on 2025-10-05, the cut: with labels known 7 days after the event (the default delay), it
#: trains on Sat 20 … Fri 26 and holds out Sat 27, the last day whose labels are mature.
RETRAIN_WEEK = date(2025, 9, 28)
#: Fraction of the training window the demo's retrain fits on: a stratified 20% (~200k rows,
#: the fraud rate kept) trains in minutes instead of most of an hour on 2 cores; the holdout
#: day stays whole, so the promotion gate compares fairly.
RETRAIN_SAMPLE: float | None = 0.2

#: Synthetic days drift from this day on (`DriftScenario`): the Drift page and the
#: FraudInputDrift rule see it from the first drifted day, and the weekly retrain (whose
#: training window ends on Fri 26) learns three drifted days and is held out on a fourth.
DRIFT_FROM = date(2025, 9, 24)
#: Fraction of the first ULB day the hgb challenger trains on: a stratified 30% (~40k rows, the
#: fraud rate kept) searches its grid in about two minutes on 2 cores, where the whole day
#: takes five; the holdout day stays whole, so the gate compares it fairly with the logreg.
CHALLENGER_SAMPLE = 0.3

#: Progress callback: (what happened, detail).
Say = Callable[[str, str], None]


def demo_days() -> list[date]:
    return [FIRST_DAY + timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]


def _target(day: date) -> DailyTarget:
    """The batch the demo's run for ``day`` loads (synthetic days drift from `DRIFT_FROM`)."""
    return daily_target(day, drift_from=DRIFT_FROM)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class PipelineTotals:
    """Row counts across the pipeline, to tell what a demo run added."""

    batches: int
    transactions: int
    predictions: int
    model_versions: int

    def added_since(self, earlier: PipelineTotals) -> dict[str, int]:
        """What grew since `earlier` (only the counts that changed)."""
        deltas = {
            "batches": self.batches - earlier.batches,
            "transactions": self.transactions - earlier.transactions,
            "predictions": self.predictions - earlier.predictions,
            "model versions": self.model_versions - earlier.model_versions,
        }
        return {k: v for k, v in deltas.items() if v}


@dataclass
class DemoResult:
    before: PipelineTotals
    after: PipelineTotals
    outcomes: list[BatchOutcome] = field(default_factory=list)
    dag_runs: list[DagRunOutcome] = field(default_factory=list)
    retrain: RetrainReport | None = None
    #: `dashboard_queries.shadow_counts` at the end: each challenger beside its champion.
    shadow: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: `dashboard_queries.batch_drift` and `batch_alert_rates` at the end.
    drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    alert_rates: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0

    @property
    def added(self) -> dict[str, int]:
        return self.after.added_since(self.before)


def pipeline_totals(settings: Settings) -> PipelineTotals:
    """Counts of batches, transactions, predictions and registered model versions."""
    from fraudpipe.adapters.mlflow.registry import list_versions
    from fraudpipe.adapters.postgres.reporting import app_engine, pipeline_counts

    engine = app_engine(settings)
    try:
        batches, transactions, predictions = pipeline_counts(engine)
    finally:
        engine.dispose()
    return PipelineTotals(batches, transactions, predictions, len(list_versions(settings)))


def bootstrap(settings: Settings, say: Say) -> None:
    """Schema, topics, contracts, Prefect deployments, Airflow metadata DB; all idempotent."""
    from fraudpipe.adapters.airflow.environment import migrate_airflow_db
    from fraudpipe.adapters.avro import CONTRACTS_DIR, registry_client
    from fraudpipe.adapters.avro.registration import register_contracts
    from fraudpipe.adapters.kafka.topics import ensure_topics
    from fraudpipe.adapters.postgres.migrate import upgrade
    from fraudpipe.orchestration.deployments import apply_deployments

    say("database schema", f"at revision {upgrade(settings)}")
    topics = ensure_topics(settings)
    say("Kafka topics", ", ".join(f"{t.spec.name} {t.action.value}" for t in topics))
    with registry_client(settings, "writer") as client:
        registered = register_contracts(client, settings, directory=CONTRACTS_DIR)
    new = sum(r.registered for r in registered)
    say("contracts", f"{new} new schema version(s), {len(registered) - new} unchanged")
    applied = apply_deployments(settings)
    say("Prefect deployments", ", ".join(d.name for d in applied))
    say("Airflow metadata DB", migrate_airflow_db(settings))


def _initial_cut(settings: Settings) -> datetime:
    """The cut the first models train as of: both ULB days old enough for their labels."""
    return _midnight(FIRST_DAY + timedelta(days=2)) + timedelta(days=settings.label_delay_days)


def ensure_initial_model(settings: Settings, say: Say) -> int:
    """Train the first model if none serves yet: on the first ULB day, held out on the second.

    Returns:
        The serving version.
    """
    from fraudpipe.orchestration import pipeline

    version = pipeline.champion_version(settings)
    if version is not None:
        say("initial model", f"champion is already version {version}")
        return version
    for day in (FIRST_DAY, FIRST_DAY + timedelta(days=1)):
        target = daily_target(day)
        run = pipeline.ingest(settings, target, logical_key=f"fraud_daily:{day.isoformat()}")
        say("ingest for the first model", f"{target.batch_id} ({run.flow_run_name})")
    run = pipeline.retrain(settings, logical_key="demo-initial-model", cut=_initial_cut(settings))
    version = pipeline.champion_version(settings)
    say("initial model", f"version {version} trained ({run.flow_run_name})")
    if version is None:
        raise DemoStepError("initial model", "the retrain finished but no champion exists")
    return version


def ensure_challenger(settings: Settings, say: Say) -> None:
    """Train an ``hgb`` challenger on the same days, through the same gate as the first model.

    The gate's loser holds the ``challenger`` alias, so the scorers run it in shadow from the
    first streamed day, and the Models page compares the two once those days' labels have
    arrived. Idempotent: the same cut reads the same rows, and the flow finds its version again.
    """
    from fraudpipe.orchestration import pipeline

    run = pipeline.retrain(
        settings,
        logical_key="demo-initial-challenger",
        model="hgb",
        sample=CHALLENGER_SAMPLE,
        cut=_initial_cut(settings),
    )
    say(
        "hgb challenger",
        f"champion v{pipeline.champion_version(settings)}, in shadow "
        f"v{pipeline.shadow_version(settings)} ({run.flow_run_name})",
    )


def run_demo(settings: Settings, say: Say, *, keep_scorer: bool = False) -> DemoResult:
    """Bootstrap, start scoring, drive every demo day through Airflow, collect the numbers.

    Args:
        settings: The stack to run against.
        say: Progress callback (step, detail).
        keep_scorer: Leave the demo's own scoring service running afterwards (when the stack
            supervises none: `FRAUDPIPE_SCORERS=0`).

    Raises:
        DemoStepError: a DAG run failed (its task logs say why).
    """
    from fraudpipe.adapters.airflow.api import AirflowClient

    began = time.monotonic()
    bootstrap(settings, say)
    result = DemoResult(before=pipeline_totals(settings), after=pipeline_totals(settings))
    ensure_initial_model(settings, say)
    ensure_challenger(settings, say)

    scorer = None
    if settings.scorers:
        say(
            "scoring service",
            f"{settings.scorers} supervised scorer(s) of the stack (`fraudpipe stack status`)",
        )
    else:
        scorer = ScorerProcess(settings, name="scorer-demo")
        scorer.start()
        say("scoring service", f"running (pid {scorer.pid}, log {scorer.log_file})")
    with _abort_on_signal(scorer, say), AirflowClient(settings) as airflow:
        try:
            _drive_days(settings, say, scorer, airflow, result)
        finally:
            if scorer is not None and keep_scorer:
                say("scoring service", f"left running (pid {scorer.pid}); stop it with kill")
            elif scorer is not None:
                scorer.stop()
                say("scoring service", "stopped")
    _collect(settings, result)
    result.seconds = time.monotonic() - began
    return result


@contextmanager
def _abort_on_signal(scorer: ScorerProcess | None, say: Say) -> Iterator[None]:
    """Ctrl-C or SIGTERM stops the demo at once (the scorer gracefully), whatever it is doing.

    A DAG run already triggered goes on in Airflow; the next `make demo` finds it and waits for
    it. Everything the demo does is idempotent, so stopping mid-step loses nothing.
    """

    def abort(signum: int, _frame: FrameType | None) -> None:
        say("interrupted", "run `make demo` again to resume")
        if scorer is not None:
            scorer.stop()
        os._exit(128 + signum)

    previous = {sig: signal.signal(sig, abort) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drive_days(
    settings: Settings,
    say: Say,
    scorer: ScorerProcess | None,
    airflow: AirflowClient,
    result: DemoResult,
) -> None:
    from fraudpipe.adapters.airflow.api import DAILY_DAG, FRAUDPIPE_DAGS
    from fraudpipe.orchestration import pipeline

    for dag_id in FRAUDPIPE_DAGS:
        airflow.set_paused(dag_id, False)
    say("Airflow", f"{', '.join(FRAUDPIPE_DAGS)} unpaused at {settings.airflow_url}")
    days = demo_days()
    for index, day in enumerate(days, start=1):
        if scorer is not None:
            scorer.check_alive()
        say(f"day {index}/{len(days)}", f"{DAILY_DAG} for {day.isoformat()} ...")
        conf = {"drift_from": DRIFT_FROM.isoformat()}
        outcome = _require_success(run_dag_via_api(airflow, DAILY_DAG, _midnight(day), conf=conf))
        result.dag_runs.append(outcome)
        batch = pipeline.batch_report(settings, _target(day).batch_id)
        say(
            f"day {index}/{len(days)}",
            f"{batch.batch_id}: {batch.rows:,} rows, {batch.flagged:,} flagged, "
            f"{batch.caught}/{batch.frauds} frauds caught ({outcome.seconds:.0f}s)",
        )
        if day == RETRAIN_AFTER:
            _weekly_retrain(settings, say, airflow, result)


def _weekly_retrain(
    settings: Settings, say: Say, airflow: AirflowClient, result: DemoResult
) -> None:
    from fraudpipe.adapters.airflow.api import WEEKLY_DAG
    from fraudpipe.orchestration import pipeline

    before = pipeline.champion_version(settings)
    week = _midnight(RETRAIN_WEEK)
    conf = {"sample": RETRAIN_SAMPLE} if RETRAIN_SAMPLE is not None else None
    # The interval the scheduler would give the week (a manual run's would end at `week`).
    interval = (week, week + timedelta(days=7))
    run = airflow.trigger(WEEKLY_DAG, week, interval=interval, conf=conf)
    if run.state == "success":
        # Like the scheduler, which never re-runs a week that succeeded, the demo leaves it be
        # (a re-run would read the same rows and return the same version).
        result.retrain = pipeline.retrain_report(settings, before)
        say(
            "weekly retrain",
            f"the week of {RETRAIN_WEEK} was already retrained (Airflow run {run.run_id} "
            f"succeeded): not re-run; champion is v{before}",
        )
        return
    say("weekly retrain", f"{WEEKLY_DAG} for the week of {RETRAIN_WEEK} ...")
    weekly_run = _require_success(_finished(airflow, run, week, time.monotonic()))
    result.dag_runs.append(weekly_run)
    result.retrain = pipeline.retrain_report(settings, before)
    verdict = "moved" if result.retrain.moved else "stayed"
    say(
        "weekly retrain",
        f"champion {verdict} (v{result.retrain.champion_before} → "
        f"v{result.retrain.champion_after}; latest v{result.retrain.latest_version}: "
        f"{result.retrain.reason or result.retrain.decision}) ({weekly_run.seconds:.0f}s)",
    )


#: How long the demo waits for one DAG run: the DAGs' own `dagrun_timeout`s are 4 and 3 hours.
RUN_WAIT_SECONDS = 4 * 3600.0


def run_dag_via_api(
    airflow: AirflowClient,
    dag_id: str,
    logical_date: datetime,
    *,
    conf: dict[str, Any] | None = None,
) -> DagRunOutcome:
    """Trigger `dag_id` for `logical_date` through the REST API and wait for its final state.

    Idempotent: the run that exists for that logical date is reused; if it failed, its failed
    tasks are cleared and run again (every task is idempotent).
    """
    began = time.monotonic()
    return _finished(airflow, airflow.trigger(dag_id, logical_date, conf=conf), logical_date, began)


def _finished(
    airflow: AirflowClient, run: DagRun, logical_date: datetime, began: float
) -> DagRunOutcome:
    """Wait for a triggered run (a failed one has its failed tasks cleared and run again)."""
    if run.state == "failed":
        run = airflow.clear_failed(run)
    run = airflow.wait(run, RUN_WAIT_SECONDS)
    return DagRunOutcome(
        dag_id=run.dag_id,
        run_id=run.run_id,
        logical_date=logical_date,
        state=run.state,
        task_states=airflow.task_states(run),
        seconds=time.monotonic() - began,
    )


def _require_success(outcome: DagRunOutcome) -> DagRunOutcome:
    if not outcome.succeeded:
        raise DemoStepError(
            f"{outcome.dag_id} for {outcome.logical_date.date().isoformat()}",
            f"DAG run {outcome.state}; failed tasks: {', '.join(outcome.failed_tasks) or '-'} "
            "(its task logs are in the Airflow UI)",
        )
    return outcome


def _collect(settings: Settings, result: DemoResult) -> None:
    from fraudpipe.adapters.postgres.dashboard_queries import (
        batch_alert_rates,
        batch_drift,
        shadow_counts,
    )
    from fraudpipe.adapters.postgres.reporting import app_engine, batch_outcomes

    engine = app_engine(settings)
    try:
        result.outcomes = batch_outcomes(engine, [_target(d).batch_id for d in demo_days()])
        result.shadow = shadow_counts(engine, timedelta(days=settings.label_delay_days))
        result.drift = batch_drift(engine)
        result.alert_rates = batch_alert_rates(engine)
    finally:
        engine.dispose()
    result.after = pipeline_totals(settings)
