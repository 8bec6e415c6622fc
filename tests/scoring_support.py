"""Real-service scaffolding for the scoring service's tests (and its benchmark).

`scoring_topics` gives a test its own five topics (transactions, predictions, alerts, DLQ, the
API's decisions),
registry subjects and consumer group, and removes all of them afterwards. `champion_model`
trains a tiny model on synthetic labelled days with the retraining code, registers it in the
real MLflow under a model name of the test's own (first version = champion), and deletes the
registered model and its experiment afterwards. `ingest_ulb_day` writes a ULB-shaped CSV day and
ingests it with the ingestion code.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import SchemaRegistryClient
from mlflow import MlflowClient

from fraudpipe.adapters.avro import Contract, make_deserializer, registry_client, value_context
from fraudpipe.adapters.avro.registration import delete_subject_completely, register_contracts
from fraudpipe.adapters.kafka.acls import scoped_rights
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.adapters.kafka.topics import ensure_topics
from fraudpipe.adapters.mlflow.registry import delete_registered_model, register_and_gate
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.columns import V_COLUMNS
from fraudpipe.config import Settings, get_settings
from fraudpipe.data.files import FileSource
from fraudpipe.ingest import ingest
from fraudpipe.model.training import Candidate, TrainingConfig, train_model
from fraudpipe.records import AlertRecord, PredictionRecord

_TIMEOUT = 30.0

TINY_TRAINING = TrainingConfig(
    candidates=(Candidate("class_weight", False, 0.1),), validation_folds=2
)


def own_settings(base: Settings, unique: str, partitions: int = 4) -> Settings:
    """Settings with topics, consumer group and model name of this test's own."""
    return base.model_copy(
        update={
            "topic_transactions": f"test.{unique}.transactions",
            "topic_predictions": f"test.{unique}.predictions",
            "topic_alerts": f"test.{unique}.alerts",
            "topic_dlq": f"test.{unique}.dlq",
            "topic_decisions": f"test.{unique}.decisions",
            "consumer_group": f"test-scorer-{unique}",
            # Named after the scorer's group: removed with it, and within its rights.
            "api_recorder_group": f"test-scorer-{unique}-recorder",
            "model_name": f"fraud-detector-test-{unique}",
            "kafka_default_partitions": partitions,
            "metrics_port": 0,
        }
    )


@contextmanager
def scoring_topics(settings: Settings) -> Iterator[Settings]:
    """The settings' five topics created, the principals' rights on them granted and its three
    contracts registered; all removed after."""
    ensure_topics(settings, timeout=_TIMEOUT)
    topics = [
        settings.topic_transactions,
        settings.topic_predictions,
        settings.topic_alerts,
        settings.topic_dlq,
        settings.topic_decisions,
    ]
    with (
        registry_client(settings, "admin") as client,
        scoped_rights(settings, get_settings(), groups_named_after=True),
    ):
        register_contracts(client, settings)
        try:
            yield settings
        finally:
            admin = AdminClient(client_config(settings, "admin"))
            # Every step runs even if an earlier one fails; the first failure is re-raised.
            with ExitStack() as cleanup:
                cleanup.callback(_delete_subjects, client, settings)
                cleanup.callback(_delete_groups, admin, settings.consumer_group)
                cleanup.callback(_delete_topics, admin, topics)


def _delete_topics(admin: AdminClient, topics: list[str]) -> None:
    for future in admin.delete_topics(topics, operation_timeout=_TIMEOUT).values():
        future.result(timeout=_TIMEOUT)


def _delete_subjects(client: SchemaRegistryClient, settings: Settings) -> None:
    for contract in Contract:
        delete_subject_completely(client, contract.subject(settings))


def _delete_groups(admin: AdminClient, prefix: str) -> None:
    """Delete the test's consumer groups (its own group and those named after it).

    A killed scorer stays a member until its session times out; deletion waits for that.
    """
    deadline = time.monotonic() + 60
    while True:
        listed = admin.list_consumer_groups(request_timeout=_TIMEOUT).result(timeout=_TIMEOUT)
        names = [g.group_id for g in listed.valid if g.group_id.startswith(prefix)]
        if not names:
            return
        try:
            for future in admin.delete_consumer_groups(names, request_timeout=_TIMEOUT).values():
                future.result(timeout=_TIMEOUT)
            return
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.NON_EMPTY_GROUP:
                raise
            if time.monotonic() > deadline:
                described = admin.describe_consumer_groups(names)
                members = {
                    name: [(m.client_id, m.host) for m in future.result(_TIMEOUT).members]
                    for name, future in described.items()
                }
                raise AssertionError(f"consumer groups still have members: {members}") from exc
            time.sleep(2.0)


def synthetic_labelled_days(seed: int, days: int = 2, rows_per_day: int = 1500) -> pd.DataFrame:
    """Labelled model-input rows with a learnable fraud pattern (negative v14/v17, big amounts)."""
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    day0 = int(pd.Timestamp("2025-09-20", tz="UTC").timestamp() * 1000)
    label = (rng.random(n) < 0.03).astype(np.int64)
    frame = pd.DataFrame(
        {
            "event_time": day0
            + np.repeat(np.arange(days), rows_per_day) * 86_400_000
            + rng.integers(0, 86_400_000, n),
            "amount": np.round(rng.lognormal(3.0, 1.0, n) * np.where(label == 1, 4.0, 1.0), 2),
            **{v: rng.normal(0.0, 1.0, n) for v in V_COLUMNS},
            "label": label,
        }
    )
    frame.loc[label == 1, "v14"] -= 5.0
    frame.loc[label == 1, "v17"] -= 4.0
    return frame.sort_values("event_time").reset_index(drop=True)


def register_tiny_model(settings: Settings, seed: int) -> int:
    """Train and register a tiny model under `settings.model_name`; returns its version."""
    result = train_model(synthetic_labelled_days(seed), TINY_TRAINING)
    return register_and_gate(result, settings).version


def set_champion(settings: Settings, version: int) -> None:
    """Point the serving alias at `version`."""
    set_alias(settings, settings.serving_alias, version)


def set_alias(settings: Settings, alias: str, version: int) -> None:
    """Point `alias` at `version`."""
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    client.set_registered_model_alias(settings.model_name, alias, str(version))


@contextmanager
def champion_model(settings: Settings, seed: int = 1) -> Iterator[int]:
    """A registered model of the test's own with a champion; deleted afterwards."""
    try:
        yield register_tiny_model(settings, seed)
    finally:
        delete_registered_model(settings)


def write_ulb_day(path: Path, rows: int, seed: int, day_offset: int = 0) -> None:
    """A ULB-shaped CSV of one calendar day (2025-09-20 + day_offset), ~1 % frauds."""
    rng = np.random.default_rng(seed)
    start = day_offset * 86_400
    frame = pd.DataFrame({"Time": np.sort(rng.uniform(start, start + 86_399, rows)).round()})
    for i in range(1, 29):
        frame[f"V{i}"] = rng.normal(size=rows)
    fraud = rng.uniform(size=rows) < 0.01
    frame.loc[fraud, "V14"] -= 6.0
    frame.loc[fraud, "V17"] -= 5.0
    frame["Amount"] = rng.gamma(2.0, 40.0, rows).round(2)
    frame["Class"] = fraud.astype(int)
    frame.to_csv(path, index=False)


def ingest_ulb_day(settings: Settings, path: Path) -> str:
    """Ingest the CSV day; returns its batch id."""
    [batch] = ingest(settings, FileSource(path)).batches
    return batch.batch_id


def ingest_days(settings: Settings, folder: Path, days: int, rows: int, seed: int) -> list[str]:
    """Write and ingest `days` consecutive ULB-shaped days; their batch ids."""
    batches = []
    for day in range(days):
        csv = folder / f"cards{day}.csv"
        write_ulb_day(csv, rows, seed=seed + day, day_offset=day)
        batches.append(ingest_ulb_day(settings, csv))
    return batches


@dataclass(frozen=True)
class PredictionRow:
    transaction_id: uuid.UUID
    model_name: str
    model_version: int
    batch_id: str
    score: float
    is_fraud: bool
    threshold: float
    latency_ms: float | None


def predictions(settings: Settings, batch_id: str | None = None) -> list[PredictionRow]:
    """Every prediction row (of one batch), ordered by transaction id and version."""
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT transaction_id, model_name, model_version, batch_id, score, is_fraud, "
            "threshold, latency_ms FROM predictions "
            "WHERE %(b)s::text IS NULL OR batch_id = %(b)s ORDER BY transaction_id, model_version",
            {"b": batch_id},
        ).fetchall()
    return [PredictionRow(*r) for r in rows]


def transaction_ids(settings: Settings, batch_id: str) -> set[uuid.UUID]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT transaction_id FROM transactions WHERE batch_id = %s", (batch_id,)
        ).fetchall()
    return {r[0] for r in rows}


def batch_status(settings: Settings, batch_id: str) -> str:
    with connect(settings) as conn:
        row = conn.execute("SELECT status FROM batches WHERE batch_id = %s", (batch_id,)).fetchone()
    assert row is not None
    return str(row[0])


def read_topic(
    settings: Settings,
    topic: str,
    expected: int,
    quiet_s: float = 2.0,
    isolation: str = "read_committed",
) -> list[Message]:
    """Every message of `topic` from the start: until `expected` arrived and `quiet_s` passed.

    ``read_committed`` (what downstream readers must use) sees the scorer's committed output
    transactions only; ``read_uncommitted`` also sees records of aborted attempts.
    """
    consumer = Consumer(
        {
            **client_config(settings, "admin"),
            "group.id": f"test-reader-{uuid.uuid4().hex[:10]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    out: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            out.extend(m for m in batch if m.error() is None)
            if len(out) >= expected:
                quiet_until = quiet_until or time.monotonic() + quiet_s
                if time.monotonic() >= quiet_until:
                    break
    finally:
        consumer.close()
    return out


def committed_offsets(settings: Settings) -> dict[int, int]:
    """The scorer group's committed offset per partition of the transactions topic."""
    consumer = Consumer({**client_config(settings, "admin"), "group.id": settings.consumer_group})
    try:
        meta = consumer.list_topics(settings.topic_transactions, timeout=_TIMEOUT)
        parts = [
            TopicPartition(settings.topic_transactions, p)
            for p in meta.topics[settings.topic_transactions].partitions
        ]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=_TIMEOUT)}
    finally:
        consumer.close()


def record_end_offsets(settings: Settings, records: int) -> dict[int, int]:
    """Per partition of the transactions topic, the offset after its last record.

    What a scorer that consumed everything commits: a transactional publish ends each
    partition it wrote with a commit marker, which takes an offset of its own, so the high
    watermark is one further.
    """
    ends: dict[int, int] = {}
    for m in read_topic(settings, settings.topic_transactions, records):
        partition, offset = m.partition() or 0, m.offset() or 0
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


def headers_of(message: Message) -> dict[str, str]:
    raw: Any = message.headers() or []
    return {k: (v or b"").decode() for k, v in raw}


def scorer_env(settings: Settings) -> dict[str, str]:
    """The environment of a scorer process working on `settings`' own database and topics."""
    return os.environ | {
        "FRAUDPIPE_PG_DATABASE": settings.pg_database,
        "FRAUDPIPE_TOPIC_TRANSACTIONS": settings.topic_transactions,
        "FRAUDPIPE_TOPIC_PREDICTIONS": settings.topic_predictions,
        "FRAUDPIPE_TOPIC_ALERTS": settings.topic_alerts,
        "FRAUDPIPE_TOPIC_DLQ": settings.topic_dlq,
        "FRAUDPIPE_CONSUMER_GROUP": settings.consumer_group,
        "FRAUDPIPE_MODEL_NAME": settings.model_name,
        "FRAUDPIPE_SCORER_EXACTLY_ONCE": str(settings.scorer_exactly_once).lower(),
    }


def exactly_once(settings: Settings) -> Settings:
    """`settings` with the scorer's output transactions on (the default; said for the tests that
    rely on them)."""
    return settings.model_copy(update={"scorer_exactly_once": True})


def stored_scoring_times(settings: Settings, batch_id: str) -> dict[uuid.UUID, int]:
    """Each prediction's scoring time as PostgreSQL holds it (epoch ms, as the topics carry)."""
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT transaction_id, floor(extract(epoch FROM scored_at) * 1000)::bigint "
            "FROM predictions WHERE batch_id = %s",
            (batch_id,),
        ).fetchall()
    return {tx: int(ms) for tx, ms in rows}


def published(
    settings: Settings, predictions: int, alerts: int
) -> tuple[list[PredictionRecord], list[AlertRecord]]:
    """The predictions and alerts a read_committed reader sees on `settings`' topics."""
    with registry_client(settings, "admin") as client:
        read_prediction = make_deserializer(Contract.PREDICTION, client)
        read_alert = make_deserializer(Contract.ALERT, client)
        found = [
            read_prediction(m.value(), value_context(settings.topic_predictions))
            for m in read_topic(settings, settings.topic_predictions, predictions)
        ]
        raised = [
            read_alert(m.value(), value_context(settings.topic_alerts))
            for m in read_topic(settings, settings.topic_alerts, alerts)
        ]
    return found, raised


def assert_each_once(settings: Settings, rows: list[PredictionRow], total: int) -> None:
    """`total` predictions once in `rows` (PostgreSQL) and, for a read_committed reader, on the
    predictions topic, with each flagged one's alert once."""
    assert len(rows) == len({r.transaction_id for r in rows}) == total
    flagged = sum(r.is_fraud for r in rows)
    outputs, alerts = published(settings, total, flagged)
    assert len(outputs) == len({p.transaction_id for p in outputs}) == total
    assert len(alerts) == len({a.transaction_id for a in alerts}) == flagged
