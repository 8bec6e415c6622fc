"""The real ULB dataset loads whole (both days, exact counts) and a second run adds nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from fraudpipe.adapters.postgres.batches import BatchRepository, BatchStatus
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.data.ulb import ULB_FRAUDS, ULB_ROWS, UlbSource
from fraudpipe.ids import transaction_id
from fraudpipe.ingest import IngestReport, ingest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def first_run(fresh_db: Settings, ulb_csv: Path, stack: Settings) -> IngestReport:
    # The source reads the cached CSV from the stack's data directory; rows go to fresh_db.
    return ingest(fresh_db, UlbSource(stack))


def test_both_days_load_every_row(first_run: IngestReport, fresh_db: Settings) -> None:
    assert [(b.outcome, b.loaded, b.frauds) for b in first_run.batches] == [
        ("loaded", 144_786, 281),
        ("loaded", 140_021, 211),
    ]
    assert first_run.summary_line() == (
        "ulb: 2 batch(es); rows read 284,807, loaded 284,807, duplicates skipped 0, quarantined 0"
    )
    with connect(fresh_db) as conn:
        batches = BatchRepository(conn).list("ulb")
        per_batch = dict(
            conn.execute("SELECT batch_id, count(*) FROM transactions GROUP BY batch_id").fetchall()
        )
        total, frauds, unlabelled = conn.execute(
            "SELECT count(*), sum(label), count(*) FILTER (WHERE label IS NULL) FROM transactions"
        ).fetchone() or (0, 0, 0)
    assert [(b.batch_id, b.batch_date, b.row_count) for b in batches] == [
        ("ulb:2025-09-20", date(2025, 9, 20), 144_786),
        ("ulb:2025-09-21", date(2025, 9, 21), 140_021),
    ]
    assert per_batch == {"ulb:2025-09-20": 144_786, "ulb:2025-09-21": 140_021}
    assert (total, frauds, unlabelled) == (ULB_ROWS, ULB_FRAUDS, 0)
    assert all(b.status is BatchStatus.LOADED and not b.is_synthetic for b in batches)
    assert all(b.quarantined_count == 0 for b in batches)


def test_exact_duplicate_rows_stay_distinct_transactions(
    first_run: IngestReport, fresh_db: Settings, ulb_csv: Path
) -> None:
    raw = pd.read_csv(ulb_csv)
    duplicated_positions = raw.index[raw.duplicated()].tolist()
    assert len(duplicated_positions) == 1_081
    with connect(fresh_db) as conn:
        found = conn.execute(
            "SELECT count(*) FROM transactions WHERE source_row = ANY(%s)",
            (duplicated_positions,),
        ).fetchone()
    assert found == (1_081,)


def test_rows_carry_their_position_id_time_and_values(
    first_run: IngestReport, fresh_db: Settings, ulb_csv: Path
) -> None:
    raw = pd.read_csv(ulb_csv)
    position = 284_806
    with connect(fresh_db) as conn:
        row = conn.execute(
            "SELECT transaction_id, batch_id, event_time, amount, v1, v28, label "
            "FROM transactions WHERE source_row = %s",
            (position,),
        ).fetchone()
    assert row is not None
    expected = raw.iloc[position]
    assert row[0] == transaction_id("ulb", position)
    assert row[1] == "ulb:2025-09-21"
    assert row[2] == datetime(2025, 9, 20, tzinfo=UTC) + pd.Timedelta(seconds=expected["Time"])
    assert (row[3], row[4], row[5], row[6]) == (
        expected["Amount"],
        expected["V1"],
        expected["V28"],
        expected["Class"],
    )


def test_second_run_is_a_no_op_that_says_so(
    first_run: IngestReport, fresh_db: Settings, stack: Settings
) -> None:
    with connect(fresh_db) as conn:
        before = BatchRepository(conn).list("ulb")
    again = ingest(fresh_db, UlbSource(stack))
    assert [b.outcome for b in again.batches] == ["unchanged", "unchanged"]
    assert again.loaded == 0
    assert again.duplicates_skipped == ULB_ROWS
    assert "2 already loaded: nothing to add" in again.summary_line()
    with connect(fresh_db) as conn:
        assert BatchRepository(conn).list("ulb") == before
        assert conn.execute("SELECT count(*) FROM transactions").fetchone() == (ULB_ROWS,)


def test_one_day_on_its_own_and_a_day_the_source_lacks(
    first_run: IngestReport, fresh_db: Settings, stack: Settings
) -> None:
    from fraudpipe.errors import IngestRequestError

    single = ingest(fresh_db, UlbSource(stack), [date(2025, 9, 21)])
    assert [(b.batch_id, b.outcome) for b in single.batches] == [("ulb:2025-09-21", "unchanged")]
    with pytest.raises(IngestRequestError, match="holds no rows for 2025-09-23"):
        ingest(fresh_db, UlbSource(stack), [date(2025, 9, 23)])
