"""The hand-written codecs against the libraries they replace, on the same rows, in one run.

Each row of the table is one codec: the library's way (the anchor a reader would otherwise
use) and ours, both timed on the same data, best of ``--repeat``, with the bytes checked equal
before anything is timed (the tests check them in depth):

- `pgcopy`: a ULB-sized day (144,786 rows, 34 columns) from its numpy columns to binary COPY
  rows; anchor: the Python objects psycopg needs, then its `Copy.write_row` into a `FileWriter`
  (nothing goes to the server).
- `arrays`: a 10,000-row micro-batch's ids, codes, scores and flags as the sink's array
  parameters; anchor: psycopg's binary list dumpers.
- `record_writer`: 20,000 `TransactionRecord`s as Avro bodies (the publisher's path), and
  20,000 of the scoring API's decisions, one in 20 with three reasons (its producer's path);
  anchor: fastavro's `schemaless_writer`.
- `column_reader`: the same 20,000 bodies read back as columns (the scorer's decode); anchor:
  fastavro's `schemaless_reader`, one message at a time.
- `row_writer`: 10,000 `Prediction`s framed for the registry (the scorer's outputs); anchor:
  fastavro's `schemaless_writer` behind the same five-byte header.
- `uuid_columns`: 10,000 ids from text to 16 bytes and back (the scorer's decode and outputs);
  anchor: `uuid.UUID` per id.

Usage: ``uv run python bench/wire_codecs.py [--repeat 5]`` with the stack up (psycopg's encoders
need a connection's adapters; no row is written).
"""

from __future__ import annotations

import argparse
import io
import json
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import fastavro
import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.adapt import PyFormat, Transformer
from psycopg.copy import FileWriter
from psycopg.types.numeric import Int4
from rich.console import Console
from rich.table import Table

from fraudpipe.adapters.avro import Contract, load_schema_str
from fraudpipe.adapters.avro.codec.column_reader import FlatRecordReader
from fraudpipe.adapters.avro.codec.record_writer import plan_flat_encoder
from fraudpipe.adapters.avro.codec.row_writer import (
    Categorical,
    Constant,
    FixedText,
    RowEncoder,
    confluent_header,
)
from fraudpipe.adapters.postgres import arrays
from fraudpipe.adapters.postgres.bulk_load import transaction_payload
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.config import get_settings
from fraudpipe.data.days import DayBatch
from fraudpipe.records import AlertDriver, DecisionRecord, TransactionRecord, to_dict
from fraudpipe.uuid_columns import format_uuid_text, parse_uuid_text

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RNG = np.random.default_rng(2026)


def best(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` calls, in seconds."""
    return min(timeit.repeat(fn, repeat=repeat, number=1))


def day(n: int) -> DayBatch:
    labels = RNG.integers(0, 2, n).astype(np.float64)
    return DayBatch(
        batch_id="ulb:2025-09-20",
        day=date(2025, 9, 20),
        ids=RNG.integers(0, 256, (n, 16), dtype=np.uint8),
        source_rows=np.arange(n, dtype=np.int64),
        event_time_us=1_758_326_400_000_000 + np.sort(RNG.integers(0, 86_400_000_000, n)),
        features=RNG.normal(size=(n, len(FEATURE_COLUMNS))),
        labels=labels,
    )


def bench_pgcopy(
    conn: psycopg.Connection[tuple[object, ...]], repeat: int
) -> tuple[str, int, float, float]:
    batch = day(144_786)
    types = ["uuid", "text", "int8", "timestamptz", *["float8"] * len(FEATURE_COLUMNS), "int2"]

    def library() -> bytes:
        # psycopg writes Python objects: the day's numpy columns become them first.
        out = io.BytesIO()
        ids = [uuid.UUID(bytes=bytes(row)) for row in batch.ids]
        times = [UNIX_EPOCH + timedelta(microseconds=us) for us in batch.event_time_us.tolist()]
        features = batch.features.tolist()
        labels = batch.labels.astype(np.int64).tolist()
        source_rows = batch.source_rows.tolist()
        with conn.cursor() as cur, psycopg.Copy(cur, binary=True, writer=FileWriter(out)) as copy:
            copy.set_types(types)
            for i in range(batch.rows):
                copy.write_row(
                    (ids[i], batch.batch_id, source_rows[i], times[i], *features[i], labels[i])
                )
        return out.getvalue()

    def ours() -> int:
        # What ingest sends: the payload's pieces, as memoryviews, straight to the COPY.
        return sum(len(piece) for piece, _ in transaction_payload(batch).chunks())

    expected = b"".join(bytes(c) for c, _ in transaction_payload(batch).chunks())
    assert library() == expected
    return "pgcopy (a day's transactions)", batch.rows, best(library, repeat), best(ours, repeat)


def bench_arrays(
    conn: psycopg.Connection[tuple[object, ...]], repeat: int
) -> tuple[str, int, float, float]:
    n = 10_000
    ids = RNG.integers(0, 256, (n, 16), dtype=np.uint8)
    codes = RNG.integers(1, 3, n)
    scores = RNG.random(n)
    flags = scores > 0.9
    transformer = Transformer(conn)

    def dump(values: list[object]) -> bytes:
        dumper = transformer.get_dumper(values, PyFormat.BINARY).upgrade(values, PyFormat.BINARY)
        return bytes(dumper.dump(values) or b"")

    def library() -> list[bytes]:
        return [
            dump([uuid.UUID(bytes=bytes(row)) for row in ids]),
            dump([Int4(c) for c in codes.tolist()]),
            dump(scores.tolist()),
            dump(flags.tolist()),
        ]

    def ours() -> list[bytes]:
        return [
            bytes(arrays.uuid_array(ids)),
            bytes(arrays.int4_array(codes)),
            bytes(arrays.float8_array(scores)),
            bytes(arrays.bool_array(flags)),
        ]

    assert library() == ours()
    return "arrays (a micro-batch's sink parameters)", n, best(library, repeat), best(ours, repeat)


def transaction_records(n: int) -> list[TransactionRecord]:
    start = datetime(2025, 9, 20, tzinfo=UTC)
    features = RNG.normal(size=(n, len(FEATURE_COLUMNS)))
    return [
        TransactionRecord(
            uuid.UUID(int=int(RNG.integers(0, 2**62)) + i),
            "ulb:2025-09-20",
            "ulb",
            start + timedelta(milliseconds=int(i * 4000)),
            abs(float(features[i, 0])),
            *features[i, 1:].tolist(),
        )
        for i in range(n)
    ]


def decision_datums(n: int) -> list[dict[str, object]]:
    """Decisions of the scoring API as their serializer's `to_dict` gives them: one in 20
    flagged, with three reasons (the array the planned encoder writes too)."""
    features = RNG.normal(size=(n, len(FEATURE_COLUMNS)))
    now = datetime(2026, 12, 5, tzinfo=UTC)
    drivers = tuple(AlertDriver(f"v{k}", 1.5 / k, f"v{k} unusual") for k in (14, 17, 12))
    return [
        DecisionRecord(
            request_id=uuid.UUID(int=i + 1),
            client="bench",
            transaction_id=uuid.UUID(int=int(RNG.integers(0, 2**62)) + i),
            batch_id="api",
            source="pos",
            event_time=now + timedelta(milliseconds=i),
            **dict(zip(FEATURE_COLUMNS, features[i].tolist(), strict=True)),
            model_name="fraud-detector",
            model_version=1,
            score=float(RNG.uniform()),
            threshold=0.5,
            is_fraud=i % 20 == 0,
            reasons_method="linear" if i % 20 == 0 else "",
            top_drivers=drivers if i % 20 == 0 else (),
            decided_at=now,
        ).to_dict()
        for i in range(n)
    ]


def bench_record_writer(
    repeat: int, contract: Contract, datums: list[dict[str, object]], label: str
) -> tuple[str, int, float, float]:
    schema = fastavro.parse_schema(json.loads(load_schema_str(contract)))
    encoder = plan_flat_encoder(schema)
    assert encoder is not None

    def library() -> list[bytes]:
        out = []
        for datum in datums:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, schema, datum)
            out.append(buffer.getvalue())
        return out

    def ours() -> list[bytes | None]:
        return [encoder.encode(datum) for datum in datums]

    assert library() == ours()
    return (f"record_writer ({label})", len(datums), best(library, repeat), best(ours, repeat))


def bench_column_reader(repeat: int) -> tuple[str, int, float, float]:
    schema = fastavro.parse_schema(json.loads(load_schema_str(Contract.TRANSACTION)))
    bodies = []
    for datum in (to_dict(r) for r in transaction_records(20_000)):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, datum)
        bodies.append(out.getvalue())
    reader = FlatRecordReader(schema)
    lengths = np.fromiter(map(len, bodies), dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    buffer = np.frombuffer(b"".join(bodies) + bytes(reader.padding), dtype=np.uint8)

    def library() -> list[object]:
        return [fastavro.schemaless_reader(io.BytesIO(b), schema, schema) for b in bodies]

    def ours() -> object:
        return reader.read(buffer, starts, ends)

    decoded = reader.read(buffer, starts, ends)
    assert decoded.ok.all()
    expected = np.array([d["amount"] for d in library()])  # type: ignore[index]
    assert np.array_equal(decoded.numbers["amount"], expected)
    return "column_reader (score: decode)", len(bodies), best(library, repeat), best(ours, repeat)


def bench_row_writer(repeat: int) -> tuple[str, int, float, float]:
    schema = fastavro.parse_schema(json.loads(load_schema_str(Contract.PREDICTION)))
    n = 10_000
    ids = RNG.integers(0, 256, (n, 16), dtype=np.uint8)
    id_text = format_uuid_text(ids)
    codes = RNG.integers(0, 2, n).astype(np.int32)
    batch_ids = ("ulb:2025-09-20", "ulb:2025-09-21")
    scores = RNG.random(n)
    flags = scores >= 0.5
    scored_at = 1_764_792_000_123
    encoder = RowEncoder(schema, 7)
    header = confluent_header(7)
    text = [bytes(row).decode() for row in id_text]

    def library() -> list[bytes]:
        out = []
        for i in range(n):
            buffer = io.BytesIO()
            buffer.write(header)
            datum = {
                "transaction_id": text[i],
                "batch_id": batch_ids[codes[i]],
                "model_name": "fraud-detector",
                "model_version": 3,
                "score": float(scores[i]),
                "is_fraud": bool(flags[i]),
                "threshold": 0.5,
                "scored_at": scored_at,
            }
            fastavro.schemaless_writer(buffer, schema, datum)
            out.append(buffer.getvalue())
        return out

    def ours() -> list[bytes]:
        return encoder.encode(
            {
                "transaction_id": FixedText(id_text),
                "batch_id": Categorical(codes, batch_ids),
                "model_name": Constant("fraud-detector"),
                "model_version": Constant(3),
                "score": scores,
                "is_fraud": flags,
                "threshold": Constant(0.5),
                "scored_at": Constant(scored_at),
            },
            n,
        )

    assert library() == ours()
    return "row_writer (score: predictions)", n, best(library, repeat), best(ours, repeat)


def bench_uuid_columns(repeat: int) -> tuple[str, int, float, float]:
    n = 10_000
    texts = [str(uuid.uuid4()) for _ in range(n)]
    matrix = np.frombuffer("".join(texts).encode(), np.uint8).reshape(n, 36)

    def library() -> list[str]:
        # Text to 16 bytes (the sink's uuid column) and back to text (the outputs' keys).
        raw = [uuid.UUID(t).bytes for t in texts]
        return [str(uuid.UUID(bytes=b)) for b in raw]

    def ours() -> npt.NDArray[np.uint8]:
        raw, ok = parse_uuid_text(matrix)
        assert ok.all()
        return format_uuid_text(raw)

    assert [bytes(row).decode() for row in ours()] == library()
    return "uuid_columns (score: ids in and out)", n, best(library, repeat), best(ours, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with connect(get_settings()) as conn:
        results = [bench_pgcopy(conn, args.repeat), bench_arrays(conn, args.repeat)]
    results += [
        bench_record_writer(
            args.repeat,
            Contract.TRANSACTION,
            [to_dict(r) for r in transaction_records(20_000)],
            "publish: transactions",
        ),
        bench_record_writer(
            args.repeat, Contract.DECISION, decision_datums(20_000), "scoring API: decisions"
        ),
        bench_column_reader(args.repeat),
        bench_row_writer(args.repeat),
        bench_uuid_columns(args.repeat),
    ]
    table = Table(title=f"hand-written codecs against their libraries (best of {args.repeat})")
    for col in ("codec", "rows", "library rows/s (anchor)", "ours rows/s", "speed-up"):
        table.add_column(col, justify="left" if col == "codec" else "right")
    for name, rows, library, ours in results:
        table.add_row(
            name,
            f"{rows:,}",
            f"{rows / library:,.0f}",
            f"{rows / ours:,.0f}",
            f"{library / ours:.1f}×",
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
