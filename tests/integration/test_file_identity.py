"""A file's rows are identified by what they are, not by where the file sits: two days' files
of one name both load, an identical re-send is a no-op, and a row whose id is known but whose
content changed is quarantined as a conflict with both versions kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from raw_files import raw_frame, write_csv

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.data.files import FileSource
from fraudpipe.ingest import ingest

pytestmark = pytest.mark.integration

DAY = 86_400.0


def _stored(settings: Settings, source: str) -> dict[str, int]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT batch_id, count(*) FROM transactions WHERE batch_id LIKE %s GROUP BY 1",
            (f"{source}:%",),
        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def _conflicts(settings: Settings, source: str) -> list[tuple[int, str, dict]]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT source_row, reason, raw FROM quarantine WHERE source = %s "
            "AND reason LIKE 'conflict:%%' ORDER BY source_row",
            (source,),
        ).fetchall()
    return [(int(r[0]), str(r[1]), r[2]) for r in rows]


@pytest.mark.parametrize("with_ids", [False, True], ids=["positions", "own ids"])
def test_two_dated_files_of_one_name_and_a_corrected_row(
    fresh_db: Settings, tmp_path: Path, unique: str, with_ids: bool
) -> None:
    name = f"cards_{unique}_{int(with_ids)}.csv"
    day1 = raw_frame(20, seed=1, seconds_apart=300.0, with_ids=with_ids, first_id=100)
    day2 = raw_frame(20, seed=2, start_seconds=DAY, seconds_apart=300.0, with_ids=with_ids,
                     first_id=200)  # fmt: skip
    first = tmp_path / "2025-09-20"
    second = tmp_path / "2025-09-21"
    first.mkdir()
    second.mkdir()
    source = FileSource(write_csv(day1, first / name))

    assert ingest(fresh_db, source).loaded == 20
    # The next day's file has the same name (and, without ids, the same positions).
    again = ingest(fresh_db, FileSource(write_csv(day2, second / name)))
    assert (again.loaded, again.duplicates_skipped, again.quarantined) == (20, 0, 0)
    assert _stored(fresh_db, source.name) == {
        f"{source.name}:2025-09-20": 20,
        f"{source.name}:2025-09-21": 20,
    }

    # The same file once more: nothing to add, and it says so.
    resend = ingest(fresh_db, FileSource(first / name))
    assert [b.outcome for b in resend.batches] == ["unchanged"]
    assert (resend.loaded, resend.quarantined) == (0, 0)

    # A corrected re-send: row 7's V5 and amount changed. Its id is known, its content is not.
    corrected = day1.copy()
    corrected.loc[7, "V5"] = 3.25
    corrected.loc[7, "Amount"] = 1234.5
    report = ingest(fresh_db, FileSource(write_csv(corrected, first / name)))
    [batch] = report.batches
    assert (batch.loaded, batch.duplicates_skipped, batch.quarantined) == (0, 19, 1)
    assert _stored(fresh_db, source.name)[f"{source.name}:2025-09-20"] == 20
    [(row, reason, raw)] = _conflicts(fresh_db, source.name)
    assert row == (107 if with_ids else 7)
    assert reason.startswith("conflict: its id is loaded already with other content")
    both = raw if isinstance(raw, dict) else json.loads(raw)
    assert both["received"]["v5"] == 3.25 and both["received"]["amount"] == 1234.5
    assert both["stored"]["v5"] == float(day1.loc[7, "V5"])
    assert both["stored"]["amount"] == float(day1.loc[7, "Amount"])
    # The stored row stands.
    with connect(fresh_db) as conn:
        amounts = [r[0] for r in conn.execute(
            "SELECT amount FROM transactions WHERE batch_id = %s ORDER BY source_row",
            (f"{source.name}:2025-09-20",),
        )]  # fmt: skip
    assert amounts[7] == float(day1.loc[7, "Amount"])
