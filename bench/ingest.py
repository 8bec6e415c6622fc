"""Ingestion throughput on the full ULB dataset, next to the ceilings measured in the same run.

Everything runs in a throwaway database (created, migrated and dropped here), and every
measurement loads the same 284,807 rows:

- raw ceilings: a binary COPY into an empty table with the same columns and no index, key or
  constraint, written (a) with psycopg's ``write_row`` per row, (b) as one numpy-built
  stream (`fraudpipe.adapters.postgres.pgcopy`), and (c) as that stream into a table created
  in the same transaction (which, with the stack's minimal WAL, writes no WAL, and is written
  back as it fills: what a new batch partition gets); only the COPY is timed, the rows are ready
  beforehand; percentages are of the best;
- indexed table: the numpy-built stream into `transactions` whose batch partitions already
  exist, attached and indexed (primary key, `event_time` index): what maintaining the indexes
  row by row costs, i.e. what loading straight into an indexed table would give;
- typical designs: COPY → staging table → ``INSERT ... ON CONFLICT DO NOTHING`` into
  `transactions` (the usual idempotent load), and pandas ``to_sql(method="multi")`` (timed on
  a slice, as it is slow);
- fraudpipe end to end: `fraudpipe.ingest.ingest` of both days (the CSV parsed in pieces of
  ~72,000 rows, the first ~9,000, by a background thread; per piece validate → ids → encode →
  into the day's open COPY; one transaction per day), with one and with two connections, then
  the same again (the no-op re-run);
- the client's stages on their own (no database), for where its share of the time goes.

Run: ``uv run python bench/ingest.py [--repeat N]`` (the local stack must be up). With
``--repeat`` every measurement runs once per round, N rounds, and the best time is kept; the
rounds interleave the measurements so that the machine's slow and fast spells hit them all
alike, and the last lines give ingest's share of the raw ceiling round by round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa
from psycopg import sql
from rich.console import Console
from rich.table import Table

from fraudpipe.adapters.postgres import pgcopy
from fraudpipe.adapters.postgres.batches import BatchRepository
from fraudpipe.adapters.postgres.bulk_load import (
    TRANSACTION_COLUMNS,
    ensure_batch_partition,
    merge_transactions,
    transaction_payload,
    tune_new_table_load,
)
from fraudpipe.adapters.postgres.connect import connect, create_engine
from fraudpipe.config import Settings, get_settings
from fraudpipe.data.days import DayBatch, prepare
from fraudpipe.data.sources import TIME_ZERO, RawRows
from fraudpipe.data.ulb import ULB_ROWS, UlbSource, ensure_ulb_csv
from fraudpipe.ingest import ingest
from fraudpipe.logs import configure_logging
from fraudpipe.stack.postgres import superuser_conninfo_for

# The throwaway-database helper is shared with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from scratch_db import scratch_database

TO_SQL_ROWS = 5_000


@dataclass(frozen=True)
class Measurement:
    name: str
    rows: int
    seconds: float
    kind: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def checkpoint(settings: Settings) -> None:
    """Flush dirty pages first, so a checkpoint does not land inside a timed step."""
    with psycopg.connect(
        superuser_conninfo_for(settings, settings.pg_database), autocommit=True
    ) as conn:
        conn.execute("CHECKPOINT")


def create_batches(settings: Settings, batches: list[DayBatch]) -> None:
    """Batch rows and their partitions, attached and indexed, still empty."""
    with connect(settings) as conn:
        repo = BatchRepository(conn)
        for b in batches:
            repo.create(
                batch_id=b.batch_id,
                source="ulb",
                batch_date=b.day,
                is_synthetic=False,
                row_count=b.rows,
                content_sha256="bench",
                source_rows=(int(b.source_rows.min()), int(b.source_rows.max())),
            )
            ensure_batch_partition(conn, b.batch_id)


def empty_pipeline_tables(settings: Settings) -> None:
    """No batches, no rows, and no batch partitions (so the next load creates its own)."""
    with connect(settings, "owner", autocommit=True) as conn:
        conn.execute("TRUNCATE transactions, batches, quarantine CASCADE")
        partitions = conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'transactions'::regclass"
        ).fetchall()
        for (name,) in partitions:
            # Detached first: predictions' foreign key refers to the partitions.
            conn.execute(
                sql.SQL("ALTER TABLE transactions DETACH PARTITION {}").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    checkpoint(settings)


def make_bare_table(settings: Settings) -> str:
    """An empty table with the transactions columns and nothing else (no key, index, check)."""
    name = f"bare_{uuid.uuid4().hex[:8]}"
    with connect(settings, "owner", autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT * FROM transactions WITH NO DATA").format(
                sql.Identifier(name)
            )
        )
    return name


def drop_table(settings: Settings, name: str) -> None:
    with connect(settings, "owner", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def copy_stream(
    settings: Settings,
    table: str,
    payloads: list[pgcopy.BinaryCopyPayload],
    *,
    create: bool = False,
) -> int:
    """Binary COPY of the payloads into `table`, in one transaction.

    Args:
        create: Create `table` (bare, like `transactions`) in that same transaction and COPY
            with FREEZE: with minimal WAL (the local stack's setting) such a COPY writes no
            WAL, as a new batch partition does, and with the same settings
            (`tune_new_table_load`); the fairest raw ceiling for fraudpipe's path.
    """
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in TRANSACTION_COLUMNS)
    options = sql.SQL("FORMAT BINARY, FREEZE" if create else "FORMAT BINARY")
    with connect(settings, "owner") as conn, conn.cursor() as cur:
        if create:
            create_sql = sql.SQL("CREATE TABLE {} (LIKE transactions)")
            cur.execute(create_sql.format(sql.Identifier(table)))
            tune_new_table_load(conn)  # as ingest does for a new partition
        for payload in payloads:
            statement = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
                sql.Identifier(table), columns, options
            )
            with cur.copy(statement) as copy:
                for chunk, _ in payload.chunks():
                    copy.write(chunk)
    return sum(p.rows for p in payloads)


def python_rows(batches: list[DayBatch]) -> list[tuple[object, ...]]:
    """The same rows as Python tuples, for psycopg's per-row writer (built untimed)."""
    out: list[tuple[object, ...]] = []
    for b in batches:
        times = [
            TIME_ZERO + timedelta(microseconds=int(us) - int(TIME_ZERO.timestamp() * 1e6))
            for us in b.event_time_us
        ]
        ids = [uuid.UUID(bytes=r.tobytes()) for r in b.ids]
        features = b.features.tolist()
        labels = [None if np.isnan(x) else int(x) for x in b.labels]
        out.extend(
            (ids[i], b.batch_id, int(b.source_rows[i]), times[i], *features[i], labels[i])
            for i in range(b.rows)
        )
    return out


def copy_write_row(settings: Settings, table: str, rows: list[tuple[object, ...]]) -> int:
    types = ["uuid", "text", "int8", "timestamptz", *["float8"] * 29, "int2"]
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in TRANSACTION_COLUMNS)
    with connect(settings, "owner") as conn, conn.cursor() as cur:
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table), columns
        )
        with cur.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    return len(rows)


def staging_merge(
    settings: Settings, batches: list[DayBatch], payloads: list[pgcopy.BinaryCopyPayload]
) -> int:
    with connect(settings) as conn:
        return sum(
            merge_transactions(conn, b, "ulb", p)[0]  # (rows inserted, content conflicts)
            for b, p in zip(batches, payloads, strict=True)
        )


def to_sql_multi(settings: Settings, table: str, batches: list[DayBatch]) -> int:
    b = batches[0]
    n = min(TO_SQL_ROWS, b.rows)
    frame = pd.DataFrame(b.features[:n], columns=["amount", *(f"v{i}" for i in range(1, 29))])
    frame.insert(0, "transaction_id", [uuid.UUID(bytes=r.tobytes()) for r in b.ids[:n]])
    frame.insert(1, "batch_id", b.batch_id)
    frame.insert(2, "source_row", b.source_rows[:n])
    frame.insert(3, "event_time", pd.to_datetime(b.event_time_us[:n], unit="us", utc=True))
    frame["label"] = b.labels[:n]
    engine = create_engine(settings, "owner")
    try:
        with engine.begin() as conn:
            frame.to_sql(
                table,
                conn,
                if_exists="append",
                index=False,
                method="multi",
                chunksize=1000,
                dtype={"transaction_id": sa.Uuid()},
            )
    finally:
        engine.dispose()
    return n


@dataclass(frozen=True)
class Case:
    """One measurement: `setup` (untimed), then `run` (timed), which returns the rows it did."""

    name: str
    kind: str
    setup: Callable[[], None]
    run: Callable[[], int]


@dataclass
class Rounds:
    """Each case's time in each round, cases in a fixed order within a round."""

    cases: list[Case]
    seconds: dict[str, list[float]]
    rows: dict[str, int]

    def best(self) -> list[Measurement]:
        return [
            Measurement(c.name, self.rows[c.name], min(self.seconds[c.name]), c.kind)
            for c in self.cases
        ]

    def against_raw(self, name: str) -> list[tuple[float, float]]:
        """Per round: the best raw COPY's time and `name`'s time, both from that round."""
        raw = [c.name for c in self.cases if c.kind == "raw"]
        return [
            (min(self.seconds[r][i] for r in raw), secs)
            for i, secs in enumerate(self.seconds[name])
        ]


def measure_in_rounds(cases: list[Case], repeat: int) -> Rounds:
    """Run every case once per round, `repeat` rounds.

    The machine's speed drifts (a shared 2-core VM: the same COPY took 0.31 s or 0.55 s
    minutes apart). Interleaved, every case meets the same slow and fast spells, and each
    round gives a ratio of two measurements taken a minute apart, not ten.
    """
    rounds = Rounds(cases, {c.name: [] for c in cases}, {})
    for _ in range(repeat):
        for case in cases:
            case.setup()
            started = time.perf_counter()
            rounds.rows[case.name] = case.run()
            rounds.seconds[case.name].append(time.perf_counter() - started)
    return rounds


INGEST_2 = "fraudpipe ingest, 2 connections (workers=2, CLI default)"


def run(repeat: int) -> tuple[list[Measurement], list[tuple[float, float]]]:
    """The measurements (best of `repeat`) and, per round, the raw ceiling's and ingest's time."""
    settings = get_settings()
    ensure_ulb_csv(settings)
    source = UlbSource(settings)
    prepared = prepare(source.name, source.read(None))
    batches = list(prepared.days.values())
    payloads = [transaction_payload(b) for b in batches]
    assert sum(p.rows for p in payloads) == ULB_ROWS

    with scratch_database(settings, prefix="fraudpipe_bench") as db:
        bare = make_bare_table(db)
        new_table = f"bare_new_{uuid.uuid4().hex[:8]}"
        per_row = python_rows(batches)

        def fresh_bare() -> None:
            with connect(db, "owner", autocommit=True) as conn:
                conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(bare)))
            checkpoint(db)

        def no_new_table() -> None:
            drop_table(db, new_table)  # untimed: the last try's table goes before the next
            checkpoint(db)

        def fresh_schema() -> None:
            empty_pipeline_tables(db)
            create_batches(db, batches)

        def ingest_with(workers: int, expect_loaded: int) -> Callable[[], int]:
            def go() -> int:
                report = ingest(db, UlbSource(settings), workers=workers)
                assert report.loaded == expect_loaded, report.summary_line()
                return report.rows_read

            return go

        cases = [
            Case(
                "binary COPY, psycopg write_row, bare table",
                "raw",
                fresh_bare,
                lambda: copy_write_row(db, bare, per_row),
            ),
            Case(
                "binary COPY, numpy stream, bare table",
                "raw",
                fresh_bare,
                lambda: copy_stream(db, bare, payloads),
            ),
            Case(
                "binary COPY, numpy stream, bare table new in the txn",
                "raw",
                no_new_table,
                lambda: copy_stream(db, new_table, payloads, create=True),
            ),
            Case(
                "binary COPY, numpy stream, into indexed partitions",
                "schema",
                fresh_schema,
                lambda: copy_stream(db, "transactions", payloads),
            ),
            Case(
                "COPY → staging → INSERT … ON CONFLICT",
                "typical",
                fresh_schema,
                lambda: staging_merge(db, batches, payloads),
            ),
            Case(
                f"pandas to_sql(method='multi'), {TO_SQL_ROWS:,} rows",
                "typical",
                fresh_bare,
                lambda: to_sql_multi(db, bare, batches),
            ),
            Case(
                "fraudpipe ingest, 1 connection (workers=1)",
                "fraudpipe",
                lambda: empty_pipeline_tables(db),
                ingest_with(1, ULB_ROWS),
            ),
            Case(
                INGEST_2, "fraudpipe", lambda: empty_pipeline_tables(db), ingest_with(2, ULB_ROWS)
            ),
            # Right after the case above, which loaded both days.
            Case("fraudpipe ingest re-run (no-op)", "fraudpipe", lambda: None, ingest_with(1, 0)),
        ]
        rounds = measure_in_rounds(cases, repeat)
        drop_table(db, bare)
        drop_table(db, new_table)
    results = rounds.best()

    # Where the client's share of the time goes (no database involved).
    started = time.perf_counter()
    # The pieces the ingest gets, parsed here with nothing to overlap with.
    pieces = [piece.frame for piece in source.read_chunks()]
    read_done = time.perf_counter()
    raw = RawRows(pd.concat(pieces))  # untimed: ingest validates piece by piece, never joins
    prepare_started = time.perf_counter()
    prepared = prepare(source.name, raw)
    prepare_done = time.perf_counter()
    for b in prepared.days.values():
        transaction_payload(b).sha256()
    encode_done = time.perf_counter()
    results += [
        Measurement("  client: parse CSV", ULB_ROWS, read_done - started, "stage"),
        Measurement(
            "  client: validate + day split + ids",
            ULB_ROWS,
            prepare_done - prepare_started,
            "stage",
        ),
        Measurement(
            "  client: encode binary COPY + hash", ULB_ROWS, encode_done - prepare_done, "stage"
        ),
    ]
    return results, rounds.against_raw(INGEST_2)


def print_table(results: list[Measurement], rounds: list[tuple[float, float]]) -> None:
    raw = [m for m in results if m.kind == "raw"]
    best = max(raw, key=lambda m: m.rows_per_second)
    table = Table(
        title=f"ingest of the ULB dataset ({ULB_ROWS:,} rows, 2 days) — "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M}"
    )
    for col in ("measurement", "rows", "seconds", "rows/s", "% of best raw COPY"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for m in results:
        table.add_row(
            m.name,
            f"{m.rows:,}",
            f"{m.seconds:.2f}",
            f"{m.rows_per_second:,.0f}",
            f"{100 * m.rows_per_second / best.rows_per_second:.0f}%",
        )
    Console(width=160).print(table)
    load = os.getloadavg()[0]
    print(f"best raw COPY: {best.name}; load average (1 min) at the end: {load:.1f} on 2 cores")
    print(f"{INGEST_2}, round by round, against that round's best raw COPY:")
    for i, (raw_s, ingest_s) in enumerate(rounds, 1):
        print(
            f"  round {i}: raw {raw_s:.2f} s, ingest {ingest_s:.2f} s, "
            f"{100 * raw_s / ingest_s:.0f}%"
        )
    median = statistics.median(raw_s / ingest_s for raw_s, ingest_s in rounds)
    print(f"  median: {100 * median:.0f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every measurement (best kept)"
    )
    args = parser.parse_args()
    configure_logging()
    results, rounds = run(args.repeat)
    print_table(results, rounds)


if __name__ == "__main__":
    main()
