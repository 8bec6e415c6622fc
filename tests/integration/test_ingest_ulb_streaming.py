"""The ULB file streams into PostgreSQL day by day, and a damaged copy never commits a bad day.

The ULB source hands over its rows in pieces and each day loads while the next piece is
validated (`fraudpipe.ingest.chunked`). What it stores must be exactly what the whole-file path
stores, and a copy of the file that went bad must not leave a wrong or partial batch.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from scratch_db import scratch_database

from fraudpipe.adapters.postgres.batches import BatchRepository
from fraudpipe.adapters.postgres.bulk_load import transaction_payload
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.data.days import prepare
from fraudpipe.data.ulb import ULB_ROWS, UlbSource, ulb_csv_path
from fraudpipe.errors import DatasetError
from fraudpipe.ingest import ingest

pytestmark = pytest.mark.integration

#: A line of the second day (2025-09-21 starts at data line 144,787).
DAY_TWO_LINE = 200_000
#: A line of the first day.
DAY_ONE_LINE = 50_000


@pytest.fixture
def db(stack: Settings) -> Iterator[Settings]:
    """A fresh, migrated database per test: each test starts from no batch."""
    with scratch_database(stack, prefix="fraudpipe_test") as scratch:
        yield scratch


def test_streamed_days_match_the_whole_file_path(
    db: Settings, stack: Settings, ulb_csv: Path
) -> None:
    source = UlbSource(stack)
    whole = prepare(source.name, source.read(None))
    report = ingest(db, source, workers=1)
    assert [(b.batch_id, b.outcome, b.loaded) for b in report.batches] == [
        ("ulb:2025-09-20", "loaded", 144_786),
        ("ulb:2025-09-21", "loaded", 140_021),
    ]
    with connect(db) as conn:
        stored = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT batch_id, content_sha256, min_source_row, max_source_row FROM batches"
            ).fetchall()
        }
    for day in whole.days.values():
        # Equal hashes: the re-run's whole-day path finds the streamed batch unchanged.
        assert stored[day.batch_id] == (
            transaction_payload(day).sha256(),
            int(day.source_rows.min()),
            int(day.source_rows.max()),
        )


def _damaged_copy(tmp_path: Path, stack: Settings, line: int, edit: str) -> Settings:
    """Settings whose ULB cache is a copy of the real file with one data line's Amount edited."""
    settings = stack.model_copy(update={"stack_dir": tmp_path})
    target = ulb_csv_path(settings)
    target.parent.mkdir(parents=True)
    shutil.copyfile(ulb_csv_path(stack), target)
    lines = target.read_bytes().split(b"\n")
    fields = lines[line].split(b",")
    fields[29] = edit.encode()  # Amount
    lines[line] = b",".join(fields)
    target.write_bytes(b"\n".join(lines))
    return settings


def _batches(settings: Settings) -> list[str]:
    with connect(settings) as conn:
        return [b.batch_id for b in BatchRepository(conn).list("ulb")]


def test_a_bad_value_in_day_two_keeps_day_one_and_writes_nothing_of_day_two(
    db: Settings, stack: Settings, ulb_csv: Path, tmp_path: Path
) -> None:
    damaged = _damaged_copy(tmp_path, stack, DAY_TWO_LINE, "-5.0")
    with pytest.raises(DatasetError, match=r"140020 valid rows, .* 1 rejected rows for 2025-09-21"):
        ingest(db, UlbSource(damaged), workers=2)
    assert _batches(db) == ["ulb:2025-09-20"]
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'transactions\\_%' AND relkind = 'r'"
        ).fetchone() == (1,)
    # The good file then adds the missing day and leaves the first alone.
    again = ingest(db, UlbSource(stack))
    assert [(b.batch_id, b.outcome) for b in again.batches] == [
        ("ulb:2025-09-20", "unchanged"),
        ("ulb:2025-09-21", "loaded"),
    ]
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM transactions").fetchone() == (ULB_ROWS,)


def test_a_broken_line_in_day_one_stops_before_anything_is_written(
    db: Settings, stack: Settings, ulb_csv: Path, tmp_path: Path
) -> None:
    damaged = _damaged_copy(tmp_path, stack, DAY_ONE_LINE, "12,50")  # one field too many
    with pytest.raises(DatasetError, match=r"damaged after data row .*Expected 31 columns, got 32"):
        ingest(db, UlbSource(damaged), workers=1)
    assert _batches(db) == []
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM transactions").fetchone() == (0,)


def test_a_broken_line_in_day_two_keeps_day_one_and_writes_nothing_of_day_two(
    db: Settings, stack: Settings, ulb_csv: Path, tmp_path: Path
) -> None:
    # The file is parsed while days load: day one is complete and checked before the broken
    # line is reached, so it commits; day two's transaction rolls back.
    damaged = _damaged_copy(tmp_path, stack, DAY_TWO_LINE, "12,50")
    with pytest.raises(DatasetError, match="damaged after data row"):
        ingest(db, UlbSource(damaged), workers=2)
    assert _batches(db) == ["ulb:2025-09-20"]
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM transactions").fetchone() == (144_786,)
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_two_streaming_ingests_at_once_load_each_day_once(
    db: Settings, stack: Settings, ulb_csv: Path
) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda _: ingest(db, UlbSource(stack), workers=2), range(2)))
    outcomes = sorted((b.batch_id, b.outcome) for run in runs for b in run.batches)
    assert outcomes == [
        ("ulb:2025-09-20", "loaded"),
        ("ulb:2025-09-20", "unchanged"),
        ("ulb:2025-09-21", "loaded"),
        ("ulb:2025-09-21", "unchanged"),
    ]
    assert sum(run.loaded for run in runs) == ULB_ROWS
    with connect(db) as conn:
        assert conn.execute(
            "SELECT count(*), count(DISTINCT transaction_id) FROM transactions"
        ).fetchone() == (ULB_ROWS, ULB_ROWS)
