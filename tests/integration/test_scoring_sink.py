"""The prediction sink against real PostgreSQL (a fresh, migrated database per module)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from scoring_support import ingest_ulb_day, write_ulb_day

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.adapters.postgres.prediction_rows import COPY_PREDICTIONS, prediction_payload
from fraudpipe.adapters.postgres.prediction_sink import PredictionSink, WriteOutcome
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.microbatch import DeadLetter, ScoredBatch, TransactionBatch

pytestmark = pytest.mark.integration

SCORED_AT = datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=UTC)


#: What the messages of the stored transactions carry: id → event time (epoch ms), features.
CONTENT: dict[bytes, tuple[int, list[float]]] = {}


@pytest.fixture(scope="module")
def days(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """Two ingested days of 150 rows; transaction ids (16 bytes) per batch id."""
    out: dict[str, list[bytes]] = {}
    features = ", ".join(FEATURE_COLUMNS)
    for offset in (0, 1):
        path = tmp_path_factory.mktemp("sink") / f"cards_sink{offset}.csv"
        write_ulb_day(path, 150, seed=30 + offset, day_offset=offset)
        batch_id = ingest_ulb_day(fresh_db, path)
        with connect(fresh_db) as conn:
            rows = conn.execute(
                "SELECT transaction_id, floor(extract(epoch FROM event_time) * 1000)::bigint, "
                f"{features} FROM transactions WHERE batch_id = %s ORDER BY source_row",
                (batch_id,),
            ).fetchall()
        out[batch_id] = [r[0].bytes for r in rows]
        CONTENT.update({r[0].bytes: (int(r[1]), [float(v) for v in r[2:]]) for r in rows})
    return out


@pytest.fixture
def sink(fresh_db: Settings) -> Iterator[PredictionSink]:
    sink = PredictionSink(fresh_db)
    yield sink
    sink.close()
    with connect(fresh_db, "owner") as conn:  # the app role may not delete
        conn.execute("DELETE FROM shadow_predictions")
        conn.execute("DELETE FROM predictions")
        conn.execute("DELETE FROM dead_letters")


def _scored(
    ids: list[bytes], codes: list[int], batch_ids: tuple[str, ...], version: int
) -> ScoredBatch:
    n = len(ids)
    rng = np.random.default_rng(version)
    # The stored content for known ids, as their genuine messages carry it; zeros for others.
    stored = [CONTENT.get(i, (0, [0.0] * len(FEATURE_COLUMNS))) for i in ids]
    columns = {"event_time": np.array([s[0] for s in stored], np.int64)}
    columns |= {c: np.array([s[1][j] for s in stored]) for j, c in enumerate(FEATURE_COLUMNS)}
    txs = TransactionBatch(
        ids=np.frombuffer(b"".join(ids), np.uint8).reshape(n, 16),
        batch_codes=np.array(codes, np.int32),
        batch_ids=batch_ids,
        sources=tuple(b.split(":")[0] for b in batch_ids),
        columns=columns,
        record_timestamps_ms=np.zeros(n, np.int64),
        message_rows=np.arange(n, dtype=np.int64),
    )
    scores = rng.random(n)
    return ScoredBatch(
        transactions=txs,
        scores=scores,
        is_fraud=scores >= 0.7,
        model_name="fraud-detector-test",
        model_version=version,
        threshold=0.7,
        scored_at=SCORED_AT,
        latency_ms=rng.random(n) * 100,
    )


def _letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error_type: str,
    error: str,
) -> DeadLetter:
    return DeadLetter(topic, partition, offset, 1_000, key, value, error_type, error)


def _rows(settings: Settings) -> list[tuple[object, ...]]:
    with connect(settings) as conn:
        return conn.execute(
            "SELECT transaction_id, model_name, model_version, batch_id, score, is_fraud, "
            "threshold, scored_at, latency_ms FROM predictions "
            "ORDER BY model_version, transaction_id"
        ).fetchall()


def test_a_micro_batch_is_written_exactly_and_only_once(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), (second, b) = days.items()
    ids = a[:100] + b[:50]
    scored = _scored(ids, [0] * 100 + [1] * 50, (first, second), version=3)

    outcome = sink.write(scored, [])
    again = sink.write(scored, [])  # redelivery
    newer = sink.write(_scored(ids, [0] * 100 + [1] * 50, (first, second), version=4), [])

    assert (outcome.committed, outcome.inserted) == (True, 150)
    assert (again.committed, again.inserted) == (True, 0)
    assert newer.inserted == 150
    expected = sorted(
        (
            uuid.UUID(bytes=ids[i]),
            "fraud-detector-test",
            3,
            first if i < 100 else second,
            float(scored.scores[i]),
            bool(scored.is_fraud[i]),
            0.7,
            SCORED_AT,
            float(scored.latency_ms[i]),
        )
        for i in range(150)
    )
    assert [r for r in _rows(fresh_db) if r[2] == 3] == expected


def test_unknown_transactions_roll_the_whole_micro_batch_back_and_are_named(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), *_ = days.items()
    strangers = [uuid.uuid4().bytes, uuid.uuid4().bytes]
    scored = _scored(a[:10] + strangers, [0] * 12, (first,), version=5)
    letter = _letter("t", 0, 7, None, b"x", "NotAvroError", "bad")

    outcome = sink.write(scored, [letter])

    assert not outcome.committed and outcome.inserted == 0
    assert outcome.unknown_rows.tolist() == [10, 11]
    assert outcome.conflicting_rows.tolist() == []
    assert _rows(fresh_db) == []
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
    # The sink stays usable: the known rows go in on the next call.
    assert sink.write(scored.select(np.arange(12) < 10), [letter]).inserted == 10


def test_dead_letters_are_stored_once_with_their_bytes(
    fresh_db: Settings, sink: PredictionSink
) -> None:
    letters = [
        _letter("topic.a", 2, 41, b"key", b"\x00\xffraw", "NotAvroError", "not avro\x00 here"),
        _letter("topic.a", 2, 42, None, None, "UnknownSchemaError", "schema id 9 unknown"),
    ]
    sink.write(None, letters)
    sink.write(None, letters)  # redelivered micro-batch

    with connect(fresh_db) as conn:
        rows = conn.execute(
            'SELECT topic, partition, "offset", key, value, error_type, error FROM dead_letters '
            'ORDER BY "offset"'
        ).fetchall()
    assert rows == [
        ("topic.a", 2, 41, b"key", b"\x00\xffraw", "NotAvroError", "not avro\\x00 here"),
        ("topic.a", 2, 42, None, None, "UnknownSchemaError", "schema id 9 unknown"),
    ]


def test_an_unreachable_database_is_an_outage(fresh_db: Settings, tmp_path: Path) -> None:
    nowhere = fresh_db.model_copy(update={"pg_port": 9})
    sink = PredictionSink(nowhere)
    with pytest.raises(ServiceUnavailableError, match="PostgreSQL"):
        sink.write(None, [_letter("t", 0, 1, None, None, "NotAvroError", "x")])


def _expected_rows(scored: ScoredBatch) -> list[tuple[object, ...]]:
    """What `_rows` returns once exactly `scored` is stored."""
    txs = scored.transactions
    return sorted(
        (
            uuid.UUID(bytes=txs.ids[i].tobytes()),
            scored.model_name,
            scored.model_version,
            txs.batch_ids[int(txs.batch_codes[i])],
            float(scored.scores[i]),
            bool(scored.is_fraud[i]),
            scored.threshold,
            scored.scored_at,
            float(scored.latency_ms[i]),
        )
        for i in range(len(scored))
    )


def _dead_letter_count(settings: Settings) -> int:
    with connect(settings) as conn:
        row = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert row is not None
    return int(row[0])


def test_a_partly_redelivered_micro_batch_inserts_only_what_is_missing(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), (second, b) = days.items()
    scored = _scored(a[:80] + b[:70], [0] * 80 + [1] * 70, (first, second), version=6)
    stored_before = np.arange(150) % 3 == 0  # 50 rows spread over both batches
    assert sink.write(scored.select(stored_before), []).inserted == 50

    # After a rebalance the redelivered micro-batch is longer than the one written before.
    outcome = sink.write(scored, [])

    assert (outcome.committed, outcome.inserted) == (True, 100)
    assert _rows(fresh_db) == _expected_rows(scored)


def test_a_fully_redelivered_micro_batch_inserts_nothing_but_its_new_dead_letters(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), *_ = days.items()
    scored = _scored(a[:40], [0] * 40, (first,), version=7)
    sink.write(scored, [])

    outcome = sink.write(scored, [_letter("t", 0, 3, None, b"x", "NotAvroError", "bad")])

    assert (outcome.committed, outcome.inserted) == (True, 0)
    assert _rows(fresh_db) == _expected_rows(scored)
    assert _dead_letter_count(fresh_db) == 1


def test_unknown_ids_are_found_before_anything_is_written(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), (second, b) = days.items()
    stranger = uuid.uuid4().bytes
    # b[20] is a transaction PostgreSQL holds, but under the second batch, not the first.
    ids = a[:20] + b[:20] + [b[20], stranger]
    scored = _scored(ids, [0] * 20 + [1] * 20 + [0, 1], (first, second), version=8)

    outcome = sink.write(scored, [])

    assert (outcome.committed, outcome.inserted) == (False, 0)
    assert outcome.unknown_rows.tolist() == [40, 41]
    assert _rows(fresh_db) == []


def test_dead_letters_commit_with_the_predictions_or_neither_does(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), *_ = days.items()
    scored = _scored(a[:30], [0] * 30, (first,), version=9)
    beyond_integer = _letter("t", 2**40, 1, None, b"x", "NotAvroError", "bad")

    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        sink.write(scored, [beyond_integer])
    assert _rows(fresh_db) == []

    outcome = sink.write(scored, [_letter("t", 0, 1, None, b"x", "NotAvroError", "bad")])
    assert (outcome.committed, outcome.inserted) == (True, 30)
    assert _rows(fresh_db) == _expected_rows(scored)
    assert _dead_letter_count(fresh_db) == 1


def test_a_transaction_twice_in_one_micro_batch_is_written_once(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), *_ = days.items()
    scored = _scored([*a[:10], a[3]], [0] * 11, (first,), version=10)

    outcome = sink.write(scored, [])

    assert (outcome.committed, outcome.inserted) == (True, 10)
    assert _rows(fresh_db) == _expected_rows(scored.select(np.arange(11) < 10))  # first kept


def test_rows_another_scorer_is_writing_meanwhile_are_not_written_twice(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    """A rebalance: another scorer's transaction holds some of the rows, not yet committed."""
    (first, a), (second, b) = days.items()
    scored = _scored(a[100:150] + b[100:150], [0] * 50 + [1] * 50, (first, second), version=11)
    theirs = scored.select(np.arange(100) % 2 == 0)
    outcomes: list[WriteOutcome] = []

    with connect(fresh_db, "app") as other:
        with other.cursor() as cur, cur.copy(COPY_PREDICTIONS) as copy:
            for chunk, _ in prediction_payload(theirs).chunks():
                copy.write(chunk)
        writer = threading.Thread(target=lambda: outcomes.append(sink.write(scored, [])))
        writer.start()
        _wait_for_a_lock_wait(fresh_db)
        other.commit()
    writer.join(timeout=30)

    assert [(o.committed, o.inserted) for o in outcomes] == [(True, 50)]
    assert _rows(fresh_db) == _expected_rows(scored)


def _wait_for_a_lock_wait(settings: Settings) -> None:
    with connect(settings, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the sink never waited on the other scorer's rows")


def test_the_copy_rows_hold_every_column_in_key_order_for_batch_ids_of_any_length(
    fresh_db: Settings,
) -> None:
    ids = [uuid.uuid4().bytes for _ in range(7)]
    scored = _scored(ids, [1, 0, 1, 0, 0, 1, 1], ("short:1", "a-longer-source:2025"), version=12)

    with connect(fresh_db, "app") as conn:
        # Same name in pg_temp, which the search path puts first: the COPY lands here.
        conn.execute("CREATE TEMP TABLE predictions (LIKE public.predictions)")
        with conn.cursor() as cur, cur.copy(COPY_PREDICTIONS) as copy:
            for chunk, _ in prediction_payload(scored).chunks():
                copy.write(chunk)
        in_copy_order = conn.execute(
            "SELECT transaction_id, model_name, model_version, batch_id, score, is_fraud, "
            "threshold, scored_at, latency_ms FROM pg_temp.predictions ORDER BY ctid"
        ).fetchall()

    assert sorted(in_copy_order) == _expected_rows(scored)
    keys = [(str(r[3]).encode(), uuid.UUID(str(r[0])).bytes) for r in in_copy_order]
    assert keys == sorted(keys)


def _forged(scored: ScoredBatch, row: int, **changes: float) -> ScoredBatch:
    """The micro-batch with one row's content altered, as a forged message would carry it."""
    columns = {c: v.copy() for c, v in scored.transactions.columns.items()}
    for name, value in changes.items():
        columns[name][row] = value
    txs = dataclasses.replace(scored.transactions, columns=columns)
    return dataclasses.replace(scored, transactions=txs)


@pytest.mark.parametrize(
    "change", [{"amount": 9_999.0}, {"v14": -19.0}, {"event_time": 1}, {"v28": -0.5}]
)
def test_a_message_with_a_real_id_and_other_content_is_a_conflict(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink, change: dict[str, float]
) -> None:
    (first, a), *_ = days.items()
    scored = _forged(_scored(a[:12], [0] * 12, (first,), version=9), 4, **change)

    outcome = sink.write(scored, [])

    assert (outcome.committed, outcome.inserted) == (False, 0)
    assert outcome.conflicting_rows.tolist() == [4]
    assert outcome.unknown_rows.tolist() == []
    assert _rows(fresh_db) == []


def test_a_forgery_before_the_genuine_message_leaves_the_genuine_one_to_be_stored(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), *_ = days.items()
    # Row 0 is a forgery of a[5]; row 6 is the genuine a[5], later in the same micro-batch.
    ids = [a[5], *a[:5], a[5]]
    scored = _forged(_scored(ids, [0] * 7, (first,), version=10), 0, amount=1.0, v17=-20.0)

    outcome = sink.write(scored, [])
    assert outcome.conflicting_rows.tolist() == [0]
    rest = sink.write(scored.select(np.arange(7) != 0), [])

    assert (rest.committed, rest.inserted) == (True, 6)
    stored = {r[0]: r[4] for r in _rows(fresh_db) if r[2] == 10}
    genuine = float(scored.scores[6])
    assert stored[uuid.UUID(bytes=a[5])] == genuine


def _shadow_rows(settings: Settings) -> list[tuple[object, ...]]:
    with connect(settings) as conn:
        return conn.execute(
            "SELECT transaction_id, model_name, model_version, champion_version, batch_id, score,"
            " would_alert, threshold, scored_at FROM shadow_predictions ORDER BY transaction_id"
        ).fetchall()


def test_shadow_scores_go_in_with_their_predictions_once(
    fresh_db: Settings, days: dict[str, list[bytes]], sink: PredictionSink
) -> None:
    (first, a), (second, b) = days.items()
    champion = _scored(a[:60] + b[:40], [0] * 60 + [1] * 40, (first, second), version=8)
    shadow = _scored(a[:60] + b[:40], [0] * 60 + [1] * 40, (first, second), version=9)
    # The shadow scored one row the champion's micro-batch does not write (it left as a
    # dead letter, say): it is not stored.
    assert sink.write(champion.select(np.arange(100) != 5), [], shadow=shadow).inserted == 99

    stored = _shadow_rows(fresh_db)
    kept = [i for i in range(100) if i != 5]
    assert [r[0].bytes for r in stored] == sorted(bytes(champion.transactions.ids[i]) for i in kept)
    by_id = {r[0].bytes: r for r in stored}
    for i in kept:
        row = by_id[bytes(shadow.transactions.ids[i])]
        assert row[1:5] == ("fraud-detector-test", 9, 8, (first, second)[i >= 60])
        assert (row[5], row[6], row[7], row[8]) == (
            pytest.approx(shadow.scores[i]),
            bool(shadow.is_fraud[i]),
            0.7,
            SCORED_AT,
        )

    # A redelivery after the champion moved: its predictions are new, the shadow's rows are
    # not (but row 5's): they stay as first written, beside v8, and nothing is doubled.
    moved = dataclasses.replace(champion, model_version=10)
    assert sink.write(moved, [], shadow=shadow).inserted == 100
    after = _shadow_rows(fresh_db)
    added = [r for r in after if r not in stored]
    assert len(after) == 100 and [r[0].bytes for r in added] == [bytes(shadow.transactions.ids[5])]
    assert added[0][2:4] == (9, 10)
