"""Micro-batch columns: typed records in and out, merging and selecting rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from fraudpipe.columns import MODEL_INPUT_COLUMNS
from fraudpipe.microbatch import TransactionBatch, empty_batch, from_epoch_ms
from fraudpipe.records import TransactionRecord

pytestmark = pytest.mark.unit


def _record(batch_id: str, ms: int, amount: float) -> TransactionRecord:
    return TransactionRecord(
        uuid.uuid4(), batch_id, batch_id.split(":")[0], from_epoch_ms(ms), amount, *range(28)
    )


def test_records_round_trip_through_columns() -> None:
    records = [
        _record("ulb:2025-09-20", 1_758_326_400_123, 12.5),
        _record("synthetic-s7:2025-09-21", 1_758_412_800_999, 0.0),
        _record("ulb:2025-09-20", 1_758_326_400_124, 3.25),
    ]
    batch = TransactionBatch.from_records(records, [1, 2, 3], [0, 1, 2])

    assert batch.batch_ids == ("ulb:2025-09-20", "synthetic-s7:2025-09-21")
    assert batch.sources == ("ulb", "synthetic-s7")
    assert batch.batch_codes.tolist() == [0, 1, 0]
    assert list(batch.columns) == MODEL_INPUT_COLUMNS
    assert batch.columns["event_time"].dtype == np.int64
    assert list(batch.frame().columns) == MODEL_INPUT_COLUMNS
    assert batch.records() == records


def test_concat_merges_batch_ids_and_select_keeps_rows() -> None:
    a = TransactionBatch.from_records([_record("ulb:2025-09-20", 0, 1.0)], [5], [0])
    b = TransactionBatch.from_records(
        [_record("ulb:2025-09-21", 1, 2.0), _record("ulb:2025-09-20", 2, 3.0)], [6, 7], [1, 2]
    )
    both = TransactionBatch.concat([a, empty_batch(), b])

    assert both.batch_ids == ("ulb:2025-09-20", "ulb:2025-09-21")
    assert both.batch_codes.tolist() == [0, 1, 0]
    assert both.record_timestamps_ms.tolist() == [5, 6, 7]
    assert both.records() == a.records() + b.records()

    kept = both.select(np.array([True, False, True]))
    assert kept.records() == [both.records()[0], both.records()[2]]
    assert kept.message_rows.tolist() == [0, 2]


def test_epoch_milliseconds_are_exact() -> None:
    moment = from_epoch_ms(1_758_326_400_001)
    assert moment == datetime(2025, 9, 20, 0, 0, 0, 1000, tzinfo=UTC)
