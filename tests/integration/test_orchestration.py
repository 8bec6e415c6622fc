"""Airflow DAGs → Prefect deployments → the real stack, end to end (`dag.test()` in-process).

`dag.test()` rather than the stack's scheduler, on purpose: every run here works in a scope of
its own (below), set through this process's environment, and the scheduler has one environment
for all runs. `tests/e2e/test_airflow_services.py` covers the scheduler, triggered through the
REST API.

What runs for real: the Airflow metadata database in the stack's PostgreSQL, the Prefect server
and the stack's `prefect-worker` (each flow run is a subprocess of it), PostgreSQL, Kafka, the
schema registry, MLflow, and a scoring service subprocess.

Isolation: the DAG tasks read `get_settings()`, so the module points the FRAUDPIPE_* variables
of the run scope (database, topics, consumer group, model name) at its own: a `fresh_db`
database, topics and subjects named after a random suffix, and a model of its own. The tasks
forward that scope to every flow run as environment (`run_scope_env`), so the worker's
subprocesses work in the same place. Data: a small CSV cut from the real ULB file (two days,
a few thousand rows) is ingested as source `file:<stem>`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from waiting import wait_for

from fraudpipe.adapters.avro.registration import delete_subject_completely
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings, get_settings
from fraudpipe.model.drift import PROFILED, SCORE

pytestmark = pytest.mark.integration

DAY_1 = date(2025, 9, 20)
DAY_2 = date(2025, 9, 21)
#: The weekly run's logical date: its cut (the data-interval end) leaves both days' labels
#: mature at the default seven-day delay.
RETRAIN_WEEK = date(2025, 10, 5)
NORMALS_PER_DAY = 1_200
FRAUDS_PER_DAY = 60


@dataclass(frozen=True)
class Scope:
    settings: Settings
    csv: Path
    suffix: str


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _small_ulb_file(ulb_csv: Path, into: Path, seed: int) -> Path:
    """Two real ULB days, cut to a few thousand rows with the frauds over-represented."""
    full = pd.read_csv(ulb_csv)
    rng = np.random.default_rng(seed)
    parts = []
    for start in (0, 86_400):
        day = full[(full["Time"] >= start) & (full["Time"] < start + 86_400)]
        for label, n in ((0, NORMALS_PER_DAY), (1, FRAUDS_PER_DAY)):
            rows = day[day["Class"] == label]
            parts.append(rows.iloc[np.sort(rng.choice(len(rows), n, replace=False))])
    small = pd.concat(parts).sort_values("Time", kind="stable")
    path = into / f"cards_{into.name}.csv"
    small.to_csv(path, index=False)
    return path


TEST_AIRFLOW_DATABASE = "airflow_test"


@pytest.fixture(scope="module")
def airflow_ready(stack: Settings) -> Settings:
    """Airflow configured from the settings (before `airflow` is imported), DB migrated,
    deployments applied, and the stack's Prefect worker serving the pool.

    The tests' DAG runs go to a metadata database of their own: in the demo's, a test's
    succeeded weekly run would make `make demo` skip its retrain as already done.
    """
    from fraudpipe.adapters.airflow.environment import apply_airflow_env, migrate_airflow_db
    from fraudpipe.orchestration.deployments import apply_deployments
    from fraudpipe.stack.postgres import ensure_database, superuser_conninfo_for
    from fraudpipe.stack.prefect_worker import PrefectWorkerService

    settings = stack.model_copy(update={"airflow_database": TEST_AIRFLOW_DATABASE})
    with psycopg.connect(superuser_conninfo_for(stack, "postgres"), autocommit=True) as conn:
        ensure_database(conn, TEST_AIRFLOW_DATABASE, stack.pg_services_user)
    apply_airflow_env(settings)
    migrate_airflow_db(settings)
    apply_deployments(settings)
    assert PrefectWorkerService(settings).is_up()
    return settings


@pytest.fixture(scope="module")
def scope(
    airflow_ready: Settings,
    fresh_db: Settings,
    ulb_csv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scope]:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from mlflow import MlflowClient

    from fraudpipe.adapters.avro import Contract, registry_client
    from fraudpipe.adapters.avro.registration import register_contracts
    from fraudpipe.adapters.kafka.acls import scoped_rights
    from fraudpipe.adapters.kafka.topics import ensure_topics
    from fraudpipe.orchestration.prefect_runs import run_scope_env

    suffix = uuid.uuid4().hex[:10]
    scoped = fresh_db.model_copy(
        update={
            "topic_transactions": f"test.{suffix}.transactions",
            "topic_predictions": f"test.{suffix}.predictions",
            "topic_alerts": f"test.{suffix}.alerts",
            "topic_dlq": f"test.{suffix}.transactions.dlq",
            "topic_decisions": f"test.{suffix}.decisions",
            "consumer_group": f"fraud-scorer-{suffix}",
            "model_name": f"fraud-detector-orch-{suffix}",
        }
    )
    csv = _small_ulb_file(ulb_csv, tmp_path_factory.mktemp(suffix), seed=int(suffix, 16) % 2**32)
    ensure_topics(scoped)
    admin = AdminClient(client_config(scoped, "admin"))
    with (
        registry_client(scoped, "admin") as client,
        scoped_rights(scoped, fresh_db),
        pytest.MonkeyPatch.context() as mp,
    ):
        register_contracts(client, scoped)
        for name, value in run_scope_env(scoped).items():
            mp.setenv(name, value)
        get_settings.cache_clear()
        try:
            assert get_settings().pg_database == scoped.pg_database
            yield Scope(scoped, csv, suffix)
        finally:
            get_settings.cache_clear()
            topics = [
                scoped.topic_transactions,
                scoped.topic_predictions,
                scoped.topic_alerts,
                scoped.topic_dlq,
                scoped.topic_decisions,
            ]
            for future in admin.delete_topics(topics).values():
                future.result(timeout=30)
            for future in admin.delete_consumer_groups([scoped.consumer_group]).values():
                with contextlib.suppress(KafkaException):  # never created if nothing consumed
                    future.result(timeout=30)
            for contract in Contract:
                delete_subject_completely(client, contract.subject(scoped))
    mlflow = MlflowClient(tracking_uri=scoped.mlflow_tracking_uri)
    if mlflow.search_registered_models(f"name='{scoped.model_name}'"):
        for mv in mlflow.search_model_versions(f"name='{scoped.model_name}'"):
            mlflow.delete_model_version(scoped.model_name, mv.version)
        mlflow.delete_registered_model(scoped.model_name)
    experiment = mlflow.get_experiment_by_name(scoped.model_name)
    if experiment is not None:
        mlflow.delete_experiment(experiment.experiment_id)


def _flow_runs_with_key(settings: Settings, deployment: str, logical_key: str) -> list[str]:
    """State types of every flow run launched for (deployment, logical key), oldest first."""
    import hashlib

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    from fraudpipe.orchestration.prefect_runs import run_key

    key = run_key(settings, deployment, logical_key)
    tag = "fraudpipe-key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    with SyncPrefectClient(
        settings.prefect_api_url, auth_string=settings.prefect_auth_string()
    ) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )
    return [r.state.type.value if r.state else "NONE" for r in runs]


@dataclass(frozen=True)
class Snapshot:
    """Everything a re-run could change: rows, the batch row, the topic's end offsets."""

    transactions: int
    predictions: int
    batch: tuple[object, ...]
    transaction_offsets: int
    model_versions: tuple[int, ...]
    champion: int | None
    #: The batch's drift rows: (version, PSI rows, rows, alerts, measured_at) per version.
    drift: tuple[tuple[object, ...], ...]


def _snapshot(settings: Settings, batch_id: str) -> Snapshot:
    from confluent_kafka import Consumer, TopicPartition

    from fraudpipe.adapters.mlflow.registry import current_serving_version, list_versions
    from fraudpipe.adapters.postgres.connect import create_engine

    engine = create_engine(settings, "app")
    try:
        with engine.connect() as conn:
            counts = conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM predictions)"
                )
            ).one()
            batch = conn.execute(
                sa.text(
                    "SELECT status, row_count, loaded_at, published_at, scored_at FROM batches"
                    " WHERE batch_id = :b"
                ),
                {"b": batch_id},
            ).one()
            drift = conn.execute(
                sa.text(
                    "SELECT r.model_version, (SELECT count(*) FROM batch_drift d"
                    " WHERE d.batch_id = r.batch_id AND d.model_version = r.model_version),"
                    " r.rows, r.alerts, r.measured_at FROM batch_alert_rates r"
                    " WHERE r.batch_id = :b ORDER BY 1"
                ),
                {"b": batch_id},
            ).all()
    finally:
        engine.dispose()
    probe = Consumer({**client_config(settings, "admin"), "group.id": "offset-probe"})
    try:
        topic = settings.topic_transactions
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        offsets = sum(
            probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        )
    finally:
        probe.close()
    return Snapshot(
        transactions=int(counts[0]),
        predictions=int(counts[1]),
        batch=tuple(batch),
        transaction_offsets=offsets,
        model_versions=tuple(v.version for v in list_versions(settings)),
        champion=current_serving_version(settings),
        drift=tuple(tuple(row) for row in drift),
    )


def test_failed_flow_fails_the_airflow_task_with_the_prefect_state(
    scope: Scope, capfd: pytest.CaptureFixture[str]
) -> None:
    from fraudpipe.orchestration.airflow_runner import load_dag, run_dag
    from fraudpipe.orchestration.deployments import INGEST_DEPLOYMENT

    missing = scope.csv.parent / "no_such_file.csv"
    day = date(2025, 9, 23)
    outcome = run_dag(
        load_dag("fraud_daily"), _midnight(day), conf={"source": str(missing)}, retries=0
    )

    assert outcome.state == "failed"
    assert outcome.task_states["ingest"] == "failed"
    assert outcome.task_states["publish"] == "upstream_failed"
    log = "".join(capfd.readouterr())
    assert "FlowRunFailed" in log
    assert f"of deployment '{INGEST_DEPLOYMENT}' ended Failed" in log
    assert "/runs/flow-run/" in log
    assert "no_such_file" in log  # the flow's own error, carried in the Prefect state message
    key = f"fraud_daily:{day.isoformat()}"
    assert _flow_runs_with_key(scope.settings, INGEST_DEPLOYMENT, key) == ["FAILED"]


def test_dags_drive_the_pipeline_and_a_rerun_changes_nothing(scope: Scope) -> None:
    from fraudpipe.adapters.mlflow.registry import list_versions
    from fraudpipe.orchestration import pipeline
    from fraudpipe.orchestration.airflow_runner import load_dag, run_dag
    from fraudpipe.orchestration.deployments import INGEST_DEPLOYMENT, PUBLISH_DEPLOYMENT
    from fraudpipe.orchestration.prefect_runs import run_scope_env
    from fraudpipe.orchestration.scorer_process import ScorerProcess

    settings = scope.settings
    conf = {"source": str(scope.csv)}
    # Labelled history first (two days: train on one, hold out the other), through the
    # ingest deployment with the keys the daily DAG uses.
    for day in (DAY_1, DAY_2):
        target = pipeline.daily_target(day, str(scope.csv))
        pipeline.ingest(settings, target, logical_key=f"fraud_daily:{day.isoformat()}")
    assert pipeline.champion_version(settings) is None

    weekly = run_dag(load_dag("fraud_weekly_retrain"), _midnight(RETRAIN_WEEK))
    assert weekly.succeeded, weekly.task_states
    report = pipeline.retrain_report(settings, None)
    assert report.champion_after == report.latest_version == 1
    assert report.moved and report.decision == "champion"

    batch_id = pipeline.daily_target(DAY_2, str(scope.csv)).batch_id
    with ScorerProcess(
        settings, name=f"scorer-{scope.suffix}", env=run_scope_env(settings), metrics_port=0
    ):
        daily = run_dag(load_dag("fraud_daily"), _midnight(DAY_2), conf=conf)
        assert daily.succeeded, daily.task_states
        first = _snapshot(settings, batch_id)
        outcome = pipeline.batch_report(settings, batch_id)
        assert outcome.status == "scored"
        assert outcome.rows == outcome.scored == NORMALS_PER_DAY + FRAUDS_PER_DAY
        assert outcome.frauds == FRAUDS_PER_DAY
        assert outcome.caught + outcome.false_alarms == outcome.flagged
        assert outcome.model_versions == (1,)
        assert first.transaction_offsets >= outcome.rows  # every row went through Kafka
        # The drift task measured the batch against version 1's training profile: 30 inputs
        # and the score.
        assert [d[:4] for d in first.drift] == [(1, 31, outcome.rows, outcome.flagged)]
        # ... pushed its gauges to the stack's Pushgateway, which Prometheus scrapes.
        pushed = _pushed(settings, "fraudpipe_drift_psi")
        assert {labels["feature"] for labels, _ in pushed} == {*PROFILED, SCORE}
        assert {labels["model_version"] for labels, _ in pushed} == {"1"}
        wait_for(
            "Prometheus scraping the batch's drift from the Pushgateway",
            lambda: (
                _prometheus_value(settings, f'fraudpipe_drift_batch_info{{batch="{batch_id}"}}')
                == 1.0
            ),
            60,
            lambda: str(_pushed(settings, "fraudpipe_drift_batch_info")),
            poll_s=2.0,
        )

        daily_again = run_dag(load_dag("fraud_daily"), _midnight(DAY_2), conf=conf)
        weekly_again = run_dag(load_dag("fraud_weekly_retrain"), _midnight(RETRAIN_WEEK))

    assert daily_again.succeeded, daily_again.task_states
    assert weekly_again.succeeded, weekly_again.task_states
    # The cut is the run's data-interval end: `dag.test()` gives a run the interval a manual
    # trigger gets, the one ending at its logical date. A re-run trains on the same rows.
    versions = list_versions(settings)
    assert [v.version for v in versions] == [1]
    assert versions[0].tags["label_cut"] == "2025-10-05T00:00:00+00:00"
    assert _snapshot(settings, batch_id) == first
    # The flows did run again (new runs, no duplicates while one was active) and found
    # nothing to do: idempotence comes from the flows.
    key = f"fraud_daily:{DAY_2.isoformat()}"
    assert _flow_runs_with_key(settings, INGEST_DEPLOYMENT, key) == ["COMPLETED"] * 3
    assert _flow_runs_with_key(settings, PUBLISH_DEPLOYMENT, key) == ["COMPLETED"] * 2


def _pushed(settings: Settings, metric: str) -> list[tuple[dict[str, str], float]]:
    """The samples of `metric` the Pushgateway holds, with their labels (read with its login)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    url = f"http://{settings.pushgateway_host}:{settings.pushgateway_port}/metrics"
    login = (settings.pushgateway_user, settings.pushgateway_password.get_secret_value())
    assert httpx.get(url, timeout=5).status_code == 401  # nobody reads or pushes without it
    text = httpx.get(url, auth=login, timeout=5).raise_for_status().text
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric
    ]


def _prometheus_value(settings: Settings, query: str) -> float | None:
    import httpx

    url = f"http://{settings.prometheus_host}:{settings.prometheus_port}/api/v1/query"
    result = httpx.get(url, params={"query": query}, timeout=5).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_applying_the_deployments_again_keeps_them(airflow_ready: Settings) -> None:
    from fraudpipe.orchestration.deployments import apply_deployments, read_applied

    before = {d.name: d.deployment_id for d in read_applied(airflow_ready)}
    after = {d.name: d.deployment_id for d in apply_deployments(airflow_ready)}
    assert after == before
