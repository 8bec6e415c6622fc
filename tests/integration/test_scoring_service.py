"""The scoring service against the real PostgreSQL, Kafka, Schema Registry and MLflow.

Each test uses its own database (`fresh_db`, per module), topics, subjects, consumer group and
registered model (see `scoring_support`), and removes them afterwards. Days are small
ULB-shaped CSV files ingested and published with the pipeline's own code.
"""

from __future__ import annotations

import io
import json
import math
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import fastavro
import httpx
import pytest
from confluent_kafka import Producer
from ports import free_port
from scoring_support import (
    PredictionRow,
    batch_status,
    champion_model,
    committed_offsets,
    headers_of,
    ingest_ulb_day,
    own_settings,
    predictions,
    read_topic,
    record_end_offsets,
    register_tiny_model,
    scoring_topics,
    set_alias,
    set_champion,
    transaction_ids,
    write_ulb_day,
)

from fraudpipe.adapters.avro import (
    Contract,
    load_schema_str,
    make_deserializer,
    registry_client,
    value_context,
)
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.adapters.mlflow.registry import current_serving_version, load_model_version
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.records import AlertRecord, PredictionRecord
from fraudpipe.scoring.runtime import RunSummary, ScoringOptions
from fraudpipe.scoring.service import ScoringService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DAY_ROWS = 2000


@pytest.fixture
def env(fresh_db: Settings, unique: str) -> Iterator[Settings]:
    """Own topics, subjects, group and a registered champion (version 1)."""
    settings = own_settings(fresh_db, unique)
    with scoring_topics(settings), champion_model(settings, seed=1):
        yield settings


def _day(settings: Settings, tmp_path: Path, rows: int, seed: int, day_offset: int = 0) -> str:
    path = tmp_path / f"cards_{uuid.uuid4().hex[:8]}.csv"
    write_ulb_day(path, rows, seed, day_offset)
    return ingest_ulb_day(settings, path)


def _run_until_idle(settings: Settings, **options: object) -> RunSummary:
    opts = ScoringOptions(idle_exit_s=3.0, batch_size=500, **options)  # type: ignore[arg-type]
    return ScoringService(settings, opts).run()


class Background:
    """A scorer running in a thread; stopped and joined by `stop()`."""

    def __init__(self, settings: Settings, options: ScoringOptions) -> None:
        self.service = ScoringService(settings, options)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.service.run()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> RunSummary:
        self.service.stop()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "scorer did not stop"
        if self.error is not None:
            raise self.error
        return self.service.summary


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_a_published_day_is_scored_exactly_once_with_lineage(env: Settings, tmp_path: Path) -> None:
    batch_id = _day(env, tmp_path, DAY_ROWS, seed=11)
    publish_batch(env, batch_id)

    summary = _run_until_idle(env)

    rows = predictions(env, batch_id)
    assert {r.transaction_id for r in rows} == transaction_ids(env, batch_id)
    assert len(rows) == DAY_ROWS  # exactly one each
    model = load_model_version(env, 1)
    for r in rows:
        assert (r.model_name, r.model_version, r.batch_id) == (env.model_name, 1, batch_id)
        assert r.threshold == pytest.approx(model.threshold)
        assert r.is_fraud == (r.score >= r.threshold)
        assert r.latency_ms is not None and r.latency_ms >= 0
    assert batch_status(env, batch_id) == "scored"
    assert summary.batches_scored == [batch_id]
    assert (summary.consumed, summary.scored, summary.inserted) == (DAY_ROWS,) * 3
    assert committed_offsets(env) == record_end_offsets(env, DAY_ROWS)

    # The same scores the model gives the stored rows, in one vectorised call.
    with connect(env) as conn:
        frame = _model_frame(conn, batch_id)
    expected = dict(zip(frame.pop("transaction_id"), model.score(frame), strict=True))
    assert max(abs(expected[r.transaction_id] - r.score) for r in rows) < 1e-12

    # The predictions topic carries the same verdicts; the alerts topic one per flagged row.
    with registry_client(env, "admin") as client:
        read_prediction = make_deserializer(Contract.PREDICTION, client)
        read_alert = make_deserializer(Contract.ALERT, client)
        published = [
            read_prediction(m.value(), value_context(env.topic_predictions))
            for m in read_topic(env, env.topic_predictions, DAY_ROWS)
        ]
        flagged = {r.transaction_id for r in rows if r.is_fraud}
        alerts = [
            read_alert(m.value(), value_context(env.topic_alerts))
            for m in read_topic(env, env.topic_alerts, len(flagged))
        ]
    assert all(isinstance(p, PredictionRecord) for p in published)
    by_id = {r.transaction_id: r for r in rows}
    assert {p.transaction_id for p in published} == set(by_id)
    for p in published:
        assert (p.score, p.is_fraud, p.model_version) == (
            by_id[p.transaction_id].score,
            by_id[p.transaction_id].is_fraud,
            1,
        )
    assert flagged, "the fraud pattern in the day should raise some alerts"
    assert all(isinstance(a, AlertRecord) for a in alerts)
    assert {a.transaction_id for a in alerts} == flagged
    assert all(a.reason.startswith("score ") and a.score >= a.threshold for a in alerts)
    assert any(d.feature in ("v14", "v17") for a in alerts for d in a.top_drivers)
    assert all(a.reasons_method == "linear" for a in alerts)

    # Each alert's reasons are stored with its prediction, as the alert carries them.
    with connect(env) as conn:
        stored = conn.execute(
            "SELECT r.transaction_id::text, r.rank, r.feature, r.contribution, r.description,"
            " r.method FROM alert_reasons r"
            " JOIN predictions p USING (transaction_id, model_version)"
            " WHERE p.batch_id = %s ORDER BY 1, 2",
            (batch_id,),
        ).fetchall()
    carried = sorted(
        (str(a.transaction_id), rank, d.feature, d.contribution, d.description, "linear")
        for a in alerts
        for rank, d in enumerate(a.top_drivers, start=1)
    )
    assert stored == carried and len(stored) >= len(alerts)
    assert all(description for *_, description, _ in stored)


def test_a_challenger_scores_in_shadow_and_never_alerts(env: Settings, tmp_path: Path) -> None:
    # The model exists and no version holds the alias yet: MLflow's 400 means "none".
    assert current_serving_version(env.model_copy(update={"serving_alias": "challenger"})) is None
    challenger = register_tiny_model(env, seed=2)
    set_champion(env, 1)  # whatever the gate decided, version 1 serves
    set_alias(env, env.shadow_alias, challenger)
    batch_id = _day(env, tmp_path, 1000, seed=21)
    publish_batch(env, batch_id)

    _run_until_idle(env)

    rows = predictions(env, batch_id)
    assert len(rows) == 1000 and {r.model_version for r in rows} == {1}
    with connect(env) as conn:
        shadow = conn.execute(
            "SELECT transaction_id, model_version, champion_version, score, would_alert,"
            " threshold FROM shadow_predictions WHERE batch_id = %s",
            (batch_id,),
        ).fetchall()
        frame = _model_frame(conn, batch_id)
    assert len(shadow) == 1000  # one shadow score per transaction the champion scored
    assert {(s[1], s[2]) for s in shadow} == {(challenger, 1)}
    model = load_model_version(env, challenger)
    expected = dict(zip(frame.pop("transaction_id"), model.score(frame), strict=True))
    assert max(abs(expected[s[0]] - s[3]) for s in shadow) < 1e-12
    assert all(s[4] == (s[3] >= model.threshold) and s[5] == model.threshold for s in shadow)

    # The shadow never alerts: every alert on the topic is the champion's.
    flagged = {r.transaction_id for r in rows if r.is_fraud}
    with registry_client(env, "admin") as client:
        read_alert = make_deserializer(Contract.ALERT, client)
        alerts = [
            read_alert(m.value(), value_context(env.topic_alerts))
            for m in read_topic(env, env.topic_alerts, len(flagged))
        ]
    assert {a.transaction_id for a in alerts} == flagged
    assert {a.model_version for a in alerts} <= {1}

    # A redelivery adds no shadow score either.
    again = env.model_copy(update={"consumer_group": f"{env.consumer_group}-again"})
    _run_until_idle(again)
    with connect(env) as conn:
        count = conn.execute(
            "SELECT count(*) FROM shadow_predictions WHERE batch_id = %s", (batch_id,)
        ).fetchone()
    assert count == (1000,)


def test_a_redelivered_day_adds_no_prediction(env: Settings, tmp_path: Path) -> None:
    batch_id = _day(env, tmp_path, 500, seed=12)
    publish_batch(env, batch_id)
    _run_until_idle(env)
    before = predictions(env, batch_id)

    # A second group reads the whole topic again: every message is a redelivery.
    again = env.model_copy(update={"consumer_group": f"{env.consumer_group}-again"})
    summary = _run_until_idle(again)

    assert summary.scored == 500 and summary.inserted == 0
    assert predictions(env, batch_id) == before
    with connect(env) as conn:
        reasons = conn.execute(
            "SELECT count(*), count(DISTINCT (transaction_id, rank)) FROM alert_reasons r"
            " JOIN predictions p USING (transaction_id, model_version) WHERE p.batch_id = %s",
            (batch_id,),
        ).fetchone()
    assert reasons is not None and reasons[0] == reasons[1]  # a redelivery added none


def test_two_scorers_split_the_partitions_and_agree_with_one(env: Settings, tmp_path: Path) -> None:
    batch_id = _day(env, tmp_path, DAY_ROWS, seed=13)
    pair = env.model_copy(update={"consumer_group": f"{env.consumer_group}-pair"})
    options = ScoringOptions(batch_size=200, poll_timeout_s=0.2)
    first = Background(pair, options)
    _wait_for(lambda: len(first.service.assigned_partitions) == 4, "the first scorer's partitions")
    second = Background(pair, options)
    _wait_for(
        lambda: (
            bool(second.service.assigned_partitions) and len(first.service.assigned_partitions) < 4
        ),
        "the group to rebalance",
    )
    publish_batch(env, batch_id)  # only now: both members share the work from the start
    _wait_for(lambda: len(predictions(env, batch_id)) == DAY_ROWS, "both scorers' predictions")
    _wait_for(lambda: batch_status(env, batch_id) == "scored", "the batch scored")
    split = (first.service.assigned_partitions, second.service.assigned_partitions)
    a, b = first.stop(), second.stop()
    together = predictions(env, batch_id)

    assert split[0] | split[1] == {0, 1, 2, 3} and not split[0] & split[1]
    assert a.consumed > 0 and b.consumed > 0
    assert a.consumed + b.consumed == DAY_ROWS
    assert len(together) == DAY_ROWS

    # One scorer alone, on the same messages, from scratch: the same verdicts.
    with connect(env, "owner") as conn:  # the app role may not delete
        conn.execute("DELETE FROM predictions")
        conn.execute("UPDATE batches SET status = 'published', scored_at = NULL")
    alone = _run_until_idle(env)
    assert alone.partitions == {0, 1, 2, 3}
    # Same rows and verdicts, each exactly once; scores equal up to float summation order
    # (BLAS sums differently in micro-batches of other sizes).
    single = predictions(env, batch_id)
    assert [_verdict(r) for r in single] == [_verdict(r) for r in together]
    assert [r.score for r in single] == pytest.approx([r.score for r in together], rel=1e-9)


def test_poison_messages_go_to_the_dlq_and_good_ones_around_them_are_scored(
    env: Settings, tmp_path: Path
) -> None:
    batch_id = _day(env, tmp_path, 300, seed=14)
    publish_batch(env, batch_id)  # good messages before the poison
    good = read_topic(env, env.topic_transactions, 300)
    template = good[0].value()
    assert template is not None
    with registry_client(env, "admin") as client:
        tx_id = client.lookup_schema(
            Contract.TRANSACTION.subject(env), _schema(Contract.TRANSACTION)
        ).schema_id
        pred_id = client.lookup_schema(
            Contract.PREDICTION.subject(env), _schema(Contract.PREDICTION)
        ).schema_id
    assert tx_id is not None and pred_id is not None
    record = fastavro.schemaless_reader(io.BytesIO(template[5:]), _parsed(Contract.TRANSACTION))
    poison = {
        "NotAvroError": b"this is not avro, just text",
        "UnknownSchemaError": b"\x00" + struct.pack(">I", 2_000_000_000) + template[5:],
        "WrongSchemaError": _frame(pred_id, Contract.PREDICTION, _prediction_dict()),
        "ContractViolationError": _frame(
            tx_id, Contract.TRANSACTION, record | {"amount": math.nan}
        ),
        "ContractViolationError:negative": _frame(
            tx_id, Contract.TRANSACTION, record | {"amount": -12.5}
        ),
        "UnknownTransactionError": _frame(
            tx_id, Contract.TRANSACTION, record | {"transaction_id": str(uuid.uuid4())}
        ),
    }
    producer = Producer(client_config(env, "admin"))
    for value in poison.values():
        producer.produce(env.topic_transactions, value, b"poison", partition=0)
    # Good messages after the poison: re-sent copies of the first ten (absorbed on write).
    for message in good[:10]:
        producer.produce(env.topic_transactions, message.value(), message.key(), partition=0)
    assert producer.flush(30) == 0

    service = ScoringService(env, ScoringOptions(idle_exit_s=3.0, batch_size=500))
    summary = service.run()

    assert summary.dead_letters == len(poison)
    assert len(predictions(env, batch_id)) == 300
    assert batch_status(env, batch_id) == "scored"
    letters = read_topic(env, env.topic_dlq, len(poison))
    assert len(letters) == len(poison)
    expected_types = sorted(k.split(":")[0] for k in poison)
    assert sorted(headers_of(m)["error.type"] for m in letters) == expected_types
    originals = {v: k for k, v in poison.items()}
    for letter in letters:
        h = headers_of(letter)
        assert letter.value() in originals  # the original bytes, untouched
        assert h["error.type"] == originals[letter.value()].split(":")[0]
        assert h["error.message"]
        assert h["original.topic"] == env.topic_transactions
        assert h["original.partition"] == "0"
        assert int(h["original.offset"]) >= 0
        assert int(h["original.timestamp"]) > 0 and int(h["dead_lettered_at"]) > 0
    with connect(env) as conn:
        stored = conn.execute(
            'SELECT error_type, value, topic, partition, "offset" FROM dead_letters'
        ).fetchall()
    assert sorted(r[0] for r in stored) == expected_types
    assert {bytes(r[1]) for r in stored} == set(poison.values())
    registry = service.metrics.registry
    for error_type in set(expected_types):
        counted = registry.get_sample_value(
            "fraudpipe_scorer_dead_letters_total", {"error_type": error_type}
        )
        assert counted == expected_types.count(error_type)
    assert committed_offsets(env) == record_end_offsets(env, 300 + len(poison) + 10)


def test_a_moved_champion_alias_is_served_without_restart(env: Settings, tmp_path: Path) -> None:
    second = register_tiny_model(env, seed=2)
    assert second == 2
    set_champion(env, 1)
    first_day = _day(env, tmp_path, 600, seed=15, day_offset=0)
    second_day = _day(env, tmp_path, 600, seed=16, day_offset=1)
    port = free_port()
    options = ScoringOptions(batch_size=200, model_poll_s=0.5, metrics_port=port, lag_every_s=0.5)
    scorer = Background(env, options)
    try:
        publish_batch(env, first_day)
        _wait_for(lambda: len(predictions(env, first_day)) == 600, "the first day's predictions")
        set_champion(env, 2)
        time.sleep(2.0)  # several polls of the alias
        publish_batch(env, second_day)
        _wait_for(lambda: len(predictions(env, second_day)) == 600, "the second day's predictions")
        _wait_for(lambda: batch_status(env, second_day) == "scored", "the second day scored")
        time.sleep(1.0)  # one more lag sample after the last commit
        exposed = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        summary = scorer.stop()
    assert {r.model_version for r in predictions(env, first_day)} == {1}
    assert {r.model_version for r in predictions(env, second_day)} == {2}
    assert summary.model_versions == {1, 2}
    samples = {
        line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in exposed.splitlines()
        if line and not line.startswith("#")
    }
    assert samples["fraudpipe_scorer_messages_consumed_total"] == 1200
    assert samples["fraudpipe_scorer_transactions_scored_total"] == 1200
    assert samples["fraudpipe_scorer_model_version"] == 2
    assert samples['fraudpipe_scorer_end_to_end_seconds_bucket{le="+Inf"}'] == 1200
    assert samples["fraudpipe_scorer_batch_size_count"] >= 6
    assert samples["fraudpipe_scorer_scoring_seconds_count"] >= 6
    lags = [v for k, v in samples.items() if k.startswith("fraudpipe_scorer_consumer_lag{")]
    assert len(lags) == 4 and all(v == 0 for v in lags)
    threshold = load_model_version(env, 2).threshold
    assert all(r.threshold == pytest.approx(threshold) for r in predictions(env, second_day))


# -- helpers ---------------------------------------------------------------------------------


def _verdict(row: PredictionRow) -> tuple[object, ...]:
    return (row.transaction_id, row.model_version, row.batch_id, row.threshold, row.is_fraud)


def _model_frame(conn: object, batch_id: str) -> object:
    import pandas as pd

    from fraudpipe.columns import MODEL_INPUT_COLUMNS

    cols = ", ".join(c for c in MODEL_INPUT_COLUMNS if c != "event_time")
    rows = conn.execute(  # type: ignore[attr-defined]
        f"SELECT transaction_id, (extract(epoch from event_time) * 1000)::bigint, {cols} "
        "FROM transactions WHERE batch_id = %s",
        (batch_id,),
    ).fetchall()
    return pd.DataFrame(rows, columns=["transaction_id", *MODEL_INPUT_COLUMNS])


def _schema(contract: Contract) -> object:
    from confluent_kafka.schema_registry import Schema

    return Schema(load_schema_str(contract), "AVRO")


def _parsed(contract: Contract) -> object:
    return fastavro.parse_schema(json.loads(load_schema_str(contract)))


def _frame(schema_id: int, contract: Contract, record: dict[str, object]) -> bytes:
    out = io.BytesIO()
    out.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(out, _parsed(contract), record)
    return out.getvalue()


def _prediction_dict() -> dict[str, object]:
    return {
        "transaction_id": str(uuid.uuid4()),
        "batch_id": "ulb:2025-09-20",
        "model_name": "m",
        "model_version": 1,
        "score": 0.5,
        "is_fraud": False,
        "threshold": 0.5,
        "scored_at": 1_764_000_000_000,
    }
