"""Cutting validated rows into day batches: event time, day boundaries, ids, quarantine records."""

from __future__ import annotations

import json
import uuid
from datetime import date

import numpy as np
import pandas as pd
import pytest
from raw_files import raw_frame

from fraudpipe.columns import RAW_FEATURE_COLUMNS
from fraudpipe.data.days import FEATURE_ORDER_COLUMNS, TIME_ZERO_US, prepare
from fraudpipe.data.sources import RawRows, Rejection
from fraudpipe.ids import transaction_id

pytestmark = pytest.mark.unit


def test_rows_split_at_utc_midnight_with_event_time_from_time_zero() -> None:
    frame = raw_frame(4)
    frame["Time"] = [0.0, 86_399.5, 86_400.0, 200_000.25]
    prepared = prepare("file:x", RawRows(frame))
    assert list(prepared.days) == [date(2025, 9, 20), date(2025, 9, 21), date(2025, 9, 22)]
    first, second, third = prepared.days.values()
    assert first.batch_id == "file:x:2025-09-20"
    assert first.event_time_us.tolist() == [TIME_ZERO_US, TIME_ZERO_US + 86_399_500_000]
    assert second.source_rows.tolist() == [2]
    assert third.event_time_us.tolist() == [TIME_ZERO_US + 200_000_250_000]
    assert prepared.rows_read == 4


def test_ids_come_from_positions_or_the_id_column() -> None:
    by_position = prepare("ulb", RawRows(raw_frame(3)))
    [batch] = by_position.days.values()
    assert uuid.UUID(bytes=batch.ids[2].tobytes()) == transaction_id("ulb", 2)
    by_id = prepare(
        "file:c", RawRows(raw_frame(3, with_ids=True, first_id=500).astype({"id": str}))
    )
    [batch] = by_id.days.values()
    assert batch.source_rows.tolist() == [500, 501, 502]
    assert uuid.UUID(bytes=batch.ids[0].tobytes()) == transaction_id("file:c", 500)


def test_positions_can_be_scoped_by_day_and_own_ids_never_are() -> None:
    frame = raw_frame(2)
    frame["Time"] = [100.0, 86_500.0]  # position 0 on the 20th, position 1 on the 21st
    scoped = prepare("file:cards", RawRows(frame), ids_per_day=True)
    first, second = scoped.days.values()
    assert uuid.UUID(bytes=first.ids[0].tobytes()) == transaction_id("file:cards:2025-09-20", 0)
    assert uuid.UUID(bytes=second.ids[0].tobytes()) == transaction_id("file:cards:2025-09-21", 1)
    # Another day's file of the same name: the same position, another id.
    other = frame.assign(Time=[86_450.0, 86_460.0])
    [batch] = prepare("file:cards", RawRows(other), ids_per_day=True).days.values()
    assert bytes(batch.ids[0]) != bytes(first.ids[0])
    with_ids = raw_frame(2, with_ids=True, first_id=7).astype({"id": str})
    [batch] = prepare("file:cards", RawRows(with_ids), ids_per_day=True).days.values()
    assert uuid.UUID(bytes=batch.ids[0].tobytes()) == transaction_id("file:cards", 7)


def test_features_and_labels_keep_their_values() -> None:
    frame = raw_frame(3).astype({"Class": "float64"})
    frame.loc[1, "Class"] = np.nan
    [batch] = prepare("f", RawRows(frame)).days.values()
    np.testing.assert_array_equal(batch.features[:, 0], frame["Amount"].to_numpy())
    np.testing.assert_array_equal(batch.features[:, 28], frame["V28"].to_numpy())
    assert np.isnan(batch.labels[1])
    assert batch.frauds == int(frame["Class"].sum())


def test_features_are_a_view_when_the_source_holds_them_side_by_side() -> None:
    order = list(FEATURE_ORDER_COLUMNS)
    # One float block, as pyarrow's `to_pandas` gives for a parsed CSV piece.
    frame = pd.DataFrame(raw_frame(50)[order].to_numpy(dtype=np.float64), columns=order)
    [batch] = prepare("f", RawRows(frame)).days.values()
    np.testing.assert_array_equal(batch.features, frame[list(RAW_FEATURE_COLUMNS)].to_numpy())
    assert np.shares_memory(batch.features, frame["V7"].to_numpy())


def test_rejected_rows_go_to_their_day_or_to_no_day() -> None:
    frame = raw_frame(5).astype({"V1": object, "Time": object})
    frame.loc[1, "Amount"] = -1.0  # day readable: 2025-09-20
    frame.loc[2, "Time"] = "soon"  # day unreadable
    frame.loc[3, "V1"] = np.inf
    rejections = [Rejection(5, "truncated line: 3 of 31 fields", {"Time": "100000", "V1": "0.5"})]
    prepared = prepare("file:q", RawRows(frame, rejections))
    day1 = prepared.days[date(2025, 9, 20)]
    assert day1.source_rows.tolist() == [0, 4]
    assert {(r.source_row, r.batch_id) for r in day1.quarantined} == {
        (1, "file:q:2025-09-20"),
        (3, "file:q:2025-09-20"),
    }
    assert [r.source_row for r in prepared.days[date(2025, 9, 21)].quarantined] == [5]
    assert prepared.days[date(2025, 9, 21)].rows == 0
    [unplaced] = prepared.unplaced
    assert (unplaced.source_row, unplaced.batch_id) == (2, None)
    assert unplaced.reason == "Time: not a number ('soon')"
    assert prepared.rows_read == 6


def test_quarantine_raw_values_are_strict_json() -> None:
    frame = raw_frame(2)
    frame.loc[0, "V9"] = np.nan
    frame.loc[0, "Amount"] = -np.inf
    [batch] = prepare("f", RawRows(frame)).days.values()
    [record] = batch.quarantined
    raw = json.loads(record.raw_json())
    assert raw["V9"] == "nan"
    assert raw["Amount"] == "-inf"
    assert raw["Time"] == 0.0
    assert set(raw) == set(frame.columns)


def test_empty_after_validation_gives_no_days() -> None:
    frame = raw_frame(2)
    frame["Amount"] = -1.0
    prepared = prepare("f", RawRows(frame))
    assert [b.rows for b in prepared.days.values()] == [0]
    assert pd.Series([len(b.quarantined) for b in prepared.days.values()]).sum() == 2
