"""Transaction and batch ids: deterministic, from the source's identity of a row, never content."""

from __future__ import annotations

import uuid
from datetime import date

import numpy as np
import pytest

from fraudpipe.ids import FRAUDPIPE_NAMESPACE, batch_id, transaction_id, transaction_ids

pytestmark = pytest.mark.unit


def test_vectorised_ids_equal_uuid5_of_source_and_row() -> None:
    rows = np.array([0, 1, 9, 10, 284_806, 2**62, 123_456_789_012], dtype=np.int64)
    ids = transaction_ids("ulb", rows)
    assert ids.shape == (len(rows), 16)
    for row, raw in zip(rows.tolist(), ids, strict=True):
        expected = uuid.uuid5(FRAUDPIPE_NAMESPACE, f"ulb:{row}")
        assert uuid.UUID(bytes=raw.tobytes()) == expected == transaction_id("ulb", row)


def test_ids_are_version5_rfc_variant_and_distinct() -> None:
    ids = [uuid.UUID(bytes=r.tobytes()) for r in transaction_ids("x", np.arange(5000))]
    assert {u.version for u in ids} == {5}
    assert {u.variant for u in ids} == {uuid.RFC_4122}
    assert len(set(ids)) == 5000


def test_same_row_of_another_source_gets_another_id() -> None:
    a = transaction_ids("file:cards", np.array([7], dtype=np.int64))
    b = transaction_ids("synthetic-s7", np.array([7], dtype=np.int64))
    assert a.tobytes() != b.tobytes()
    assert transaction_ids("file:cards", np.array([7], dtype=np.int64)).tobytes() == a.tobytes()


def test_no_rows_no_ids() -> None:
    assert transaction_ids("ulb", np.array([], dtype=np.int64)).shape == (0, 16)


def test_batch_id_is_source_and_iso_day() -> None:
    assert batch_id("ulb", date(2025, 9, 20)) == "ulb:2025-09-20"
    assert batch_id("file:cards", date(2025, 10, 1)) == "file:cards:2025-10-01"
