"""Two ingests of the same day at the same time: one loads, the other adds nothing."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from raw_files import raw_frame, write_csv

from fraudpipe.config import Settings
from fraudpipe.data.files import FileSource
from fraudpipe.db.connect import connect
from fraudpipe.ingest import IngestReport, ingest

pytestmark = pytest.mark.integration

ROWS = 3_000


def _count(settings: Settings, source: str) -> int:
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT count(*) FROM transactions WHERE batch_id LIKE %s", (f"{source}:%",)
        ).fetchone()
    return int(row[0]) if row else 0


def test_two_threads_ingesting_one_day(fresh_db: Settings, tmp_path: Path, unique: str) -> None:
    path = write_csv(raw_frame(ROWS, seconds_apart=20.0), tmp_path / f"race_{unique}.csv")
    source = FileSource(path)
    start = threading.Barrier(2)
    reports: list[IngestReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            reports.append(ingest(fresh_db, source))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    outcomes = sorted(r.batches[0].outcome for r in reports)
    assert outcomes == ["loaded", "unchanged"]
    assert sorted(r.loaded for r in reports) == [0, ROWS]
    assert _count(fresh_db, source.name) == ROWS


def _ingest_in_process(database: str, path: str, go: object, out: object) -> None:
    # A spawned process reads its settings like any process (env / .env), then the test database.
    from fraudpipe.config import get_settings

    settings = get_settings().model_copy(update={"pg_database": database})
    go.wait()  # type: ignore[attr-defined]
    report = ingest(settings, FileSource(Path(path)))
    out.put(report.batches[0].outcome)  # type: ignore[attr-defined]


def test_two_processes_ingesting_one_day(fresh_db: Settings, tmp_path: Path, unique: str) -> None:
    path = write_csv(raw_frame(ROWS, seconds_apart=20.0), tmp_path / f"race2_{unique}.csv")
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_ingest_in_process, args=(fresh_db.pg_database, str(path), go, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(timeout=600)  # generous: spawned interpreters import the whole stack
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted([out.get(timeout=5), out.get(timeout=5)]) == ["loaded", "unchanged"]
    assert _count(fresh_db, FileSource(path).name) == ROWS
