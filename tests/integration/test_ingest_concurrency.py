"""Two ingests of the same day at the same time: one loads, the other adds nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from raw_files import raw_frame, write_csv

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.data.files import FileSource
from fraudpipe.ingest import IngestReport, ingest

pytestmark = pytest.mark.integration

ROWS = 3_000
RACER = Path(__file__).parents[1] / "ingest_racer.py"


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


def test_two_processes_ingesting_one_day(fresh_db: Settings, tmp_path: Path, unique: str) -> None:
    path = write_csv(raw_frame(ROWS, seconds_apart=20.0), tmp_path / f"race2_{unique}.csv")
    go = tmp_path / "go"
    readies = [tmp_path / f"ready{i}" for i in range(2)]
    # Output to files, not pipes: a racer blocked on a full pipe while holding the batch's
    # lock would stall the other one.
    outs = [(tmp_path / f"out{i}").open("w+") for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(RACER), fresh_db.pg_database, str(path), str(ready), str(go)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        for ready, out in zip(readies, outs, strict=True)
    ]
    deadline = time.monotonic() + 600  # each interpreter imports the whole stack
    while not all(r.exists() for r in readies):
        assert time.monotonic() < deadline, "racers never got ready"
        assert all(p.poll() is None for p in procs), _tails(outs)
        time.sleep(0.05)
    go.touch()
    assert [p.wait(timeout=600) for p in procs] == [0, 0], _tails(outs)
    assert sorted(t.splitlines()[-1] for t in _tails(outs)) == ["loaded", "unchanged"]
    assert _count(fresh_db, FileSource(path).name) == ROWS


def _tails(outs: list[IO[str]]) -> list[str]:
    texts = []
    for out in outs:
        out.flush()
        out.seek(0)
        texts.append(out.read().strip()[-3000:])
    return texts
