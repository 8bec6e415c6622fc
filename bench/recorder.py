"""The decision recorder's two steps, per decision, each beside the way it was done before.

The scoring API's recorder (`fraudpipe.serving.recorder`) decodes a poll of `Decision` messages
and writes them to `api_decisions`. On this machine's two cores it shares the CPU with the API
it records for, so its cost per decision bounds the API's throughput. Measured here, in one
run, on the same decisions:

- **decode**: the registry-framed Avro values the API writes (`DecisionCodec.encode`) into
  `DecisionRecord`s, by the library's `AvroDeserializer` (the anchor) and by the
  `PinnedAvroDeserializer` that `make_deserializer` returns; the two must agree record for
  record;
- **write**: a batch into `api_decisions`, by a pipelined ``INSERT … VALUES … ON CONFLICT DO
  NOTHING`` per decision (``executemany``, the anchor) and by `record_decisions` (one
  ``INSERT … SELECT FROM unnest(…)`` of binary arrays). Each write runs in a transaction that
  is rolled back, so the table is left as it was and every round inserts the same rows.

Best of `--rounds` for each. Needs the local stack (registry, PostgreSQL, the decisions
subject registered: `fraudpipe stack up`).

Run: `uv run python bench/recorder.py [--decisions 2000] [--rounds 5]`
"""

from __future__ import annotations

import argparse
import json
import timeit
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from confluent_kafka.schema_registry.avro import AvroDeserializer
from rich.console import Console
from rich.table import Table

from fraudpipe.adapters.avro import Contract, load_schema_str, registry_client
from fraudpipe.adapters.avro.decisions import DecisionCodec
from fraudpipe.adapters.avro.serde import make_deserializer, value_context
from fraudpipe.adapters.postgres.connect import Connection, connect
from fraudpipe.adapters.postgres.decisions import record_decisions
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.config import get_settings
from fraudpipe.records import AlertDriver, DecisionRecord

console = Console()

#: The recorder's write before `record_decisions` took arrays: one pipelined insert per row.
ROW_INSERT = """
INSERT INTO api_decisions (
    transaction_id, request_id, client, batch_id, source, event_time, features,
    model_name, model_version, score, threshold, is_fraud, reasons_method, top_drivers,
    decided_at
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)
ON CONFLICT (transaction_id) DO NOTHING
"""


def decisions(count: int) -> list[DecisionRecord]:
    """Decisions as the API makes them: one in 20 flagged, with three reasons."""
    rng = np.random.default_rng(2026)
    now = datetime.now(UTC).replace(microsecond=0)
    request = uuid.uuid4()
    drivers = tuple(AlertDriver(f"v{k}", 1.5 / k, f"v{k} unusual") for k in (14, 17, 12))
    made = []
    for i in range(count):
        flagged = i % 20 == 0
        made.append(
            DecisionRecord(
                request_id=request,
                client="bench",
                transaction_id=uuid.uuid4(),
                batch_id="bench-recorder",
                source="bench-recorder",
                event_time=now - timedelta(seconds=i),
                **dict(
                    zip(
                        FEATURE_COLUMNS, rng.normal(size=len(FEATURE_COLUMNS)).tolist(), strict=True
                    )
                ),
                model_name="fraud-detector",
                model_version=1,
                score=float(rng.uniform()),
                threshold=0.5,
                is_fraud=flagged,
                reasons_method="linear" if flagged else "",
                top_drivers=drivers if flagged else (),
                decided_at=now,
            )
        )
    return made


def best(fn: Callable[[], object], rounds: int) -> float:
    """The fastest of `rounds` calls, in seconds."""
    return min(timeit.repeat(fn, repeat=rounds, number=1))


def rolled_back(conn: Connection, write: Callable[[Connection], object]) -> Callable[[], object]:
    def run() -> object:
        with conn.transaction(force_rollback=True):
            return write(conn)

    return run


def row_inserts(conn: Connection, made: Sequence[DecisionRecord]) -> None:
    rows = [
        (
            d.transaction_id, d.request_id, d.client, d.batch_id, d.source, d.event_time,
            list(d.features()), d.model_name, d.model_version, d.score, d.threshold,
            d.is_fraud, d.reasons_method,
            json.dumps([r.to_dict() for r in d.top_drivers]),
            d.decided_at,
        )
        for d in made
    ]  # fmt: skip
    with conn.cursor() as cursor:
        cursor.executemany(ROW_INSERT, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=2000, help="one poll's worth")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = get_settings()
    client = registry_client(settings)
    made = decisions(args.decisions)
    codec = DecisionCodec(settings, client)
    values = [codec.encode(d) for d in made]
    context = value_context(settings.topic_decisions)
    library = AvroDeserializer(client, load_schema_str(Contract.DECISION), DecisionRecord.from_dict)
    pinned = make_deserializer(Contract.DECISION, client)
    # Both see each schema id once before timing: the registry lookup is not the cost.
    assert [library(v, context) for v in values] == made
    assert [pinned(v, context) for v in values] == made
    n = len(made)
    rows: list[tuple[str, str, float]] = []
    for step, name, fn in (
        ("decode", "AvroDeserializer (anchor)", lambda: [library(v, context) for v in values]),
        ("decode", "PinnedAvroDeserializer", lambda: [pinned(v, context) for v in values]),
    ):
        rows.append((step, name, best(fn, args.rounds)))
    with connect(settings, "app") as conn:
        for name, write in (
            ("INSERT per row, pipelined (anchor)", lambda c: row_inserts(c, made)),
            ("record_decisions (unnest of arrays)", lambda c: record_decisions(c, made)),
        ):
            rows.append(("write", name, best(rolled_back(conn, write), args.rounds)))
    table = Table(title=f"decision recorder: {n:,} decisions, best of {args.rounds}")
    for column in ("step", "how", "decisions/s", "µs per decision", "× anchor"):
        table.add_column(column, justify="left" if column in ("step", "how") else "right")
    anchors = {step: seconds for step, name, seconds in rows if "anchor" in name}
    for step, name, seconds in rows:
        table.add_row(
            step,
            name,
            f"{n / seconds:,.0f}",
            f"{seconds / n * 1e6:.1f}",
            f"{anchors[step] / seconds:.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
