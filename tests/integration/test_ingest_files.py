"""Files end to end against the real database: corrupt rows are quarantined with reasons and
raw values while good rows load; unusable files fail whole and write nothing; overlapping files
add only their new rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from raw_files import raw_frame, write_csv

from fraudpipe.adapters.postgres.batches import BatchRepository
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.data.files import FileSource
from fraudpipe.errors import BatchClosedError, EmptySourceError, SourceColumnsError
from fraudpipe.ingest import ingest

pytestmark = pytest.mark.integration

DAY = 86_400.0


def _counts(settings: Settings, source: str) -> tuple[int, int]:
    with connect(settings) as conn:
        loaded = conn.execute(
            "SELECT count(*) FROM transactions t JOIN batches b USING (batch_id) "
            "WHERE b.source = %s",
            (source,),
        ).fetchone()
        quarantined = conn.execute(
            "SELECT count(*) FROM quarantine WHERE source = %s", (source,)
        ).fetchone()
    return int(loaded[0]) if loaded else 0, int(quarantined[0]) if quarantined else 0


def _quarantine(settings: Settings, source: str) -> dict[int, tuple[str | None, str, dict]]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT source_row, batch_id, reason, raw FROM quarantine WHERE source = %s",
            (source,),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_corrupt_rows_are_quarantined_and_good_rows_load(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    path = tmp_path / f"corrupt_{unique}.csv"
    frame = raw_frame(40, seconds_apart=600.0).astype({"V2": object})
    frame.loc[3, "V2"] = "abc"  # text in a number
    frame.loc[5, "V9"] = np.nan  # NaN
    frame.loc[7, "Amount"] = -12.5  # negative amount
    frame.loc[9, "Time"] = -30.0  # negative time: no day
    frame.loc[11, "Class"] = 7  # label not 0/1
    frame.loc[13, "V20"] = np.inf  # infinite
    write_csv(frame, path)
    text = path.read_text()
    path.write_text(text[: len(text) - 200])  # truncated last line (position 39)
    source = FileSource(path)

    report = ingest(fresh_db, source)

    bad = {3, 5, 7, 9, 11, 13, 39}
    assert report.rows_read == 40
    assert report.loaded == 40 - len(bad)
    assert report.quarantined == len(bad)
    quarantined = _quarantine(fresh_db, source.name)
    assert set(quarantined) == bad
    reasons = {pos: reason for pos, (_, reason, _) in quarantined.items()}
    assert reasons[3] == "V2: not a number ('abc')"
    assert reasons[5] == "V9: missing"
    assert reasons[7] == "Amount: negative (-12.5)"
    assert reasons[9] == "Time: negative (-30.0)"
    assert reasons[11] == "Class: not 0 or 1 (7.0)"
    assert reasons[13] == "V20: inf is outside [-148.416, 133.34]"
    assert reasons[39].startswith("truncated line:")
    batch_of = {pos: b for pos, (b, _, _) in quarantined.items()}
    assert batch_of[9] is None  # a negative Time belongs to no day
    assert batch_of[3] == f"{source.name}:2025-09-20"
    raw3 = quarantined[3][2]
    assert raw3["V2"] == "abc"
    assert raw3["Time"] == "1800" and set(raw3) == set(frame.columns)
    assert quarantined[5][2]["V9"] in (None, "nan", "NaN")
    with connect(fresh_db) as conn:
        batch = BatchRepository(conn).get(f"{source.name}:2025-09-20")
    assert batch is not None
    assert (batch.row_count, batch.quarantined_count) == (33, 6)

    again = ingest(fresh_db, source)
    assert again.loaded == 0
    assert [b.outcome for b in again.batches] == ["unchanged"]
    assert _counts(fresh_db, source.name) == (33, 7)  # nothing doubled, quarantine included


def test_wrong_columns_fail_whole_and_write_nothing(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    path = write_csv(raw_frame(5).drop(columns=["V11"]), tmp_path / f"cols_{unique}.csv")
    with pytest.raises(SourceColumnsError, match="missing V11"):
        ingest(fresh_db, FileSource(path))
    assert _counts(fresh_db, FileSource(path).name) == (0, 0)
    with connect(fresh_db) as conn:
        assert BatchRepository(conn).list(FileSource(path).name) == []


def test_empty_file_fails_with_a_clear_error(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    path = tmp_path / f"empty_{unique}.csv"
    path.write_text("")
    with pytest.raises(EmptySourceError, match="no data rows"):
        ingest(fresh_db, FileSource(path))


def test_duplicate_ids_inside_a_file(fresh_db: Settings, tmp_path: Path, unique: str) -> None:
    frame = raw_frame(6, with_ids=True, first_id=100)
    frame = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)  # exact repeat → position 6
    frame.loc[4, "id"] = 101  # conflicts with position 1
    path = write_csv(frame, tmp_path / f"ids_{unique}.csv")
    source = FileSource(path)
    report = ingest(fresh_db, source)
    assert report.loaded == 4  # positions 0, 2, 3, 5
    quarantined = _quarantine(fresh_db, source.name)
    assert set(quarantined) == {1, 4, 6}
    assert "repeats position 2" in quarantined[6][1]
    assert "different values" in quarantined[1][1]
    with connect(fresh_db) as conn:
        rows = conn.execute(
            "SELECT source_row FROM transactions WHERE batch_id LIKE %s ORDER BY 1",
            (f"{source.name}:%",),
        ).fetchall()
    assert [r[0] for r in rows] == [100, 102, 103, 105]  # the file's own ids


def test_longer_export_of_the_same_file_adds_only_new_rows(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    # Same stem and ids: the second export overlaps the first and goes on into the next day.
    full = raw_frame(30, with_ids=True, start_seconds=DAY - 15 * 600.0, seconds_apart=600.0)
    path = tmp_path / f"export_{unique}.csv"
    write_csv(full.iloc[:12], path)  # 12 rows, all on 2025-09-20
    first = ingest(fresh_db, FileSource(path))
    assert [(b.batch_id.rsplit(":", 1)[1], b.outcome, b.loaded) for b in first.batches] == [
        ("2025-09-20", "loaded", 12)
    ]

    write_csv(full, path)  # 15 rows on the 20th (12 known), 15 on the 21st
    second = ingest(fresh_db, FileSource(path))
    assert [(b.outcome, b.loaded, b.duplicates_skipped) for b in second.batches] == [
        ("extended", 3, 12),
        ("loaded", 15, 0),
    ]
    assert second.loaded == 18
    assert _counts(fresh_db, FileSource(path).name) == (30, 0)
    with connect(fresh_db) as conn:
        counts = [b.row_count for b in BatchRepository(conn).list(FileSource(path).name)]
    assert counts == [15, 15]

    third = ingest(fresh_db, FileSource(path))
    assert third.loaded == 0 and [b.outcome for b in third.batches] == ["unchanged"] * 2


def test_new_batch_whose_rows_exist_elsewhere_takes_the_dedup_path(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    # A row (same id) re-exported with a later time lands in another day's batch: its id range
    # overlaps the 20th's, so its rows are checked there, and the batch loads only new rows.
    # Those two ids come back with other content (time, features): conflicts, quarantined.
    frame = raw_frame(4, with_ids=True, first_id=900, seconds_apart=60.0)
    path = write_csv(frame, tmp_path / f"moved_{unique}.csv")
    ingest(fresh_db, FileSource(path))
    moved = raw_frame(6, with_ids=True, first_id=902, start_seconds=DAY + 60.0, seconds_apart=60.0)
    write_csv(moved, path)  # ids 902, 903 exist (on the 20th); 904..907 are new
    report = ingest(fresh_db, FileSource(path))
    [batch] = report.batches
    assert (batch.outcome, batch.loaded, batch.duplicates_skipped) == ("loaded", 4, 0)
    assert batch.quarantined == 2
    with connect(fresh_db) as conn:
        got = BatchRepository(conn).get(batch.batch_id)
        on_20th = conn.execute(
            "SELECT count(*) FROM transactions WHERE batch_id = %s",
            (f"{FileSource(path).name}:2025-09-20",),
        ).fetchone()
        ids = conn.execute(
            "SELECT count(*), count(DISTINCT transaction_id) FROM transactions "
            "WHERE batch_id LIKE %s",
            (f"{FileSource(path).name}:%",),
        ).fetchone()
    assert got is not None and got.row_count == 4
    assert on_20th == (4,)
    assert ids == (8, 8)  # no id under two batches


def test_new_rows_for_a_published_batch_are_refused(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    frame = raw_frame(10, with_ids=True, seconds_apart=60.0)
    path = write_csv(frame.iloc[:6], tmp_path / f"closed_{unique}.csv")
    [batch] = ingest(fresh_db, FileSource(path)).batches
    with connect(fresh_db) as conn:
        assert BatchRepository(conn).mark_published(batch.batch_id)
    write_csv(frame.iloc[:4], path)  # a subset: nothing new, so fine
    assert [b.outcome for b in ingest(fresh_db, FileSource(path)).batches] == ["unchanged"]
    write_csv(frame, path)  # 4 new rows for a published batch
    with pytest.raises(BatchClosedError, match=r"already published.*4 rows"):
        ingest(fresh_db, FileSource(path))
    assert _counts(fresh_db, FileSource(path).name) == (6, 0)


def test_parquet_file_loads(fresh_db: Settings, tmp_path: Path, unique: str) -> None:
    frame = raw_frame(25, with_ids=True, seconds_apart=3600.0)
    frame.loc[4, "Amount"] = -1.0
    path = tmp_path / f"cards_{unique}.parquet"
    frame.to_parquet(path)
    report = ingest(fresh_db, FileSource(path))
    assert (report.loaded, report.quarantined) == (24, 1)
    raw = _quarantine(fresh_db, FileSource(path).name)[4][2]
    assert raw["Amount"] == -1.0
    assert json.dumps(raw)  # plain JSON


def test_days_loaded_in_parallel_give_the_same_result(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    frame = raw_frame(900, seconds_apart=DAY * 3 / 900)  # three days
    frame.loc[100, "V5"] = np.nan
    path = write_csv(frame, tmp_path / f"parallel_{unique}.csv")
    report = ingest(fresh_db, FileSource(path), workers=2)
    assert [b.day.isoformat() for b in report.batches] == [
        "2025-09-20",
        "2025-09-21",
        "2025-09-22",
    ]
    assert [b.outcome for b in report.batches] == ["loaded"] * 3
    assert (report.loaded, report.quarantined) == (899, 1)
    assert _counts(fresh_db, FileSource(path).name) == (899, 1)
    again = ingest(fresh_db, FileSource(path), workers=3)
    assert [b.outcome for b in again.batches] == ["unchanged"] * 3
