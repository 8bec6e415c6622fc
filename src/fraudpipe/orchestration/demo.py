"""`fraudpipe demo`: bootstrap the pipeline, then drive it through the Airflow DAGs day by day.

Days: the two ULB days (2025-09-20/21), then two weeks of synthetic days (2025-09-22 … 10-05),
one `fraud_daily` run each (`dag.test()` in this process: ingest → publish → wait scored →
report, each step a Prefect flow run on the stack's worker), with one `fraud_weekly_retrain`
after the first full week. A scoring service runs in the background the whole time.

Every step is idempotent, so a second demo adds nothing: it re-runs each daily DAG, finds every
batch loaded, published and scored, and says so by comparing the row counts before and after.
The weekly retrain is the exception the scheduler makes too: a week whose run succeeded is not
run again, because a retrain reads all labelled history and would, today, train on later days.
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
from typing import TYPE_CHECKING

from fraudpipe.adapters.postgres.reporting import BatchOutcome
from fraudpipe.config import Settings
from fraudpipe.errors import DemoStepError
from fraudpipe.orchestration.airflow_runner import DagRunOutcome
from fraudpipe.orchestration.pipeline import RetrainReport, daily_target
from fraudpipe.orchestration.scorer_process import ScorerProcess

FIRST_DAY = date(2025, 9, 20)
LAST_DAY = date(2025, 10, 5)
#: The weekly retrain runs once this day is through: the first full week (Sat 20 … Sat 27).
RETRAIN_AFTER = date(2025, 9, 27)
#: Logical date of that weekly run: the week starting Sunday 2025-09-21.
RETRAIN_WEEK = date(2025, 9, 21)
#: Fraction of the training window the demo's retrain fits on: a stratified 20% of the first
#: week (~200k rows, the fraud rate kept) trains in minutes instead of most of an hour on
#: 2 cores; the holdout day stays whole, so the promotion gate compares fairly.
RETRAIN_SAMPLE: float | None = 0.2

if TYPE_CHECKING:
    from airflow.sdk import DAG

#: Progress callback: (what happened, detail).
Say = Callable[[str, str], None]


def demo_days() -> list[date]:
    return [FIRST_DAY + timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]


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
    from fraudpipe.adapters.avro import CONTRACTS_DIR, registry_client
    from fraudpipe.adapters.avro.registration import register_contracts
    from fraudpipe.adapters.kafka.topics import ensure_topics
    from fraudpipe.adapters.postgres.migrate import upgrade
    from fraudpipe.orchestration.airflow_env import migrate_airflow_db
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
    run = pipeline.retrain(settings, logical_key="demo-initial-model")
    version = pipeline.champion_version(settings)
    say("initial model", f"version {version} trained ({run.flow_run_name})")
    if version is None:
        raise DemoStepError("initial model", "the retrain finished but no champion exists")
    return version


def run_demo(settings: Settings, say: Say, *, keep_scorer: bool = False) -> DemoResult:
    """Bootstrap, start scoring, drive every demo day through the DAGs, collect the numbers.

    Args:
        settings: The stack to run against.
        say: Progress callback (step, detail).
        keep_scorer: Leave the scoring service running afterwards.

    Raises:
        DemoStepError: a DAG run failed (its task logs say why).
    """
    from fraudpipe.orchestration.airflow_env import apply_airflow_env

    began = time.monotonic()
    # Before anything imports airflow. Airflow's own INFO lines (a dozen per task) would bury
    # the demo's progress; its warnings and errors still show.
    apply_airflow_env(settings, log_level="WARNING")
    bootstrap(settings, say)
    result = DemoResult(before=pipeline_totals(settings), after=pipeline_totals(settings))
    ensure_initial_model(settings, say)

    scorer = ScorerProcess(settings, name="scorer-demo")
    scorer.start()
    say("scoring service", f"running (pid {scorer.pid}, log {scorer.log_file})")
    with _abort_on_signal(scorer, say):
        try:
            _drive_days(settings, say, scorer, result)
        finally:
            if keep_scorer:
                say("scoring service", f"left running (pid {scorer.pid}); stop it with kill")
            else:
                scorer.stop()
                say("scoring service", "stopped")
    _collect(settings, result)
    result.seconds = time.monotonic() - began
    return result


@contextmanager
def _abort_on_signal(scorer: ScorerProcess, say: Say) -> Iterator[None]:
    """Ctrl-C or SIGTERM stops the demo at once (the scorer gracefully), whatever it is doing.

    Inside `dag.test()` an interrupt would only fail the running task, which Airflow then
    retries: the demo would carry on. Everything the demo does is idempotent, so stopping
    mid-step loses nothing; the next `make demo` resumes.
    """

    def abort(signum: int, _frame: FrameType | None) -> None:
        say("interrupted", "stopping the scoring service; run `make demo` again to resume")
        scorer.stop()
        os._exit(128 + signum)

    previous = {sig: signal.signal(sig, abort) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drive_days(settings: Settings, say: Say, scorer: ScorerProcess, result: DemoResult) -> None:
    from fraudpipe.orchestration import pipeline
    from fraudpipe.orchestration.airflow_runner import load_dag, run_dag

    daily = load_dag("fraud_daily")
    weekly = load_dag("fraud_weekly_retrain")
    days = demo_days()
    for index, day in enumerate(days, start=1):
        scorer.check_alive()
        say(f"day {index}/{len(days)}", f"fraud_daily for {day.isoformat()} ...")
        outcome = _require_success(run_dag(daily, _midnight(day)))
        result.dag_runs.append(outcome)
        batch = pipeline.batch_report(settings, daily_target(day).batch_id)
        say(
            f"day {index}/{len(days)}",
            f"{batch.batch_id}: {batch.rows:,} rows, {batch.flagged:,} flagged, "
            f"{batch.caught}/{batch.frauds} frauds caught ({outcome.seconds:.0f}s)",
        )
        if day == RETRAIN_AFTER:
            _weekly_retrain(settings, say, weekly, result)


def _weekly_retrain(settings: Settings, say: Say, weekly: DAG, result: DemoResult) -> None:
    from fraudpipe.orchestration import pipeline
    from fraudpipe.orchestration.airflow_runner import run_dag, succeeded_before

    before = pipeline.champion_version(settings)
    week = _midnight(RETRAIN_WEEK)
    if succeeded_before(weekly.dag_id, week):
        # A retrain reads all labelled history: re-running an old week today would train on
        # the later days too and register a new model. Like the scheduler, which never re-runs
        # a week that succeeded, the demo leaves it be.
        result.retrain = pipeline.retrain_report(settings, before)
        say(
            "weekly retrain",
            f"the week of {RETRAIN_WEEK} was already retrained (Airflow run succeeded): not "
            f"re-run; champion is v{before}",
        )
        return
    say("weekly retrain", f"fraud_weekly_retrain for the week of {RETRAIN_WEEK} ...")
    conf = {"sample": RETRAIN_SAMPLE} if RETRAIN_SAMPLE is not None else None
    weekly_run = _require_success(run_dag(weekly, week, conf=conf))
    result.dag_runs.append(weekly_run)
    result.retrain = pipeline.retrain_report(settings, before)
    verdict = "moved" if result.retrain.moved else "stayed"
    say(
        "weekly retrain",
        f"champion {verdict} (v{result.retrain.champion_before} → "
        f"v{result.retrain.champion_after}; latest v{result.retrain.latest_version}: "
        f"{result.retrain.reason or result.retrain.decision}) ({weekly_run.seconds:.0f}s)",
    )


def _require_success(outcome: DagRunOutcome) -> DagRunOutcome:
    if not outcome.succeeded:
        raise DemoStepError(
            f"{outcome.dag_id} for {outcome.logical_date.date().isoformat()}",
            f"DAG run {outcome.state}; failed tasks: {', '.join(outcome.failed_tasks) or '-'}",
        )
    return outcome


def _collect(settings: Settings, result: DemoResult) -> None:
    from fraudpipe.adapters.postgres.reporting import app_engine, batch_outcomes

    engine = app_engine(settings)
    try:
        result.outcomes = batch_outcomes(engine, [daily_target(d).batch_id for d in demo_days()])
    finally:
        engine.dispose()
    result.after = pipeline_totals(settings)
