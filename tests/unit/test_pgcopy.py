"""The numpy-built binary COPY stream equals PostgreSQL's format written field by field."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from fraudpipe.adapters.postgres import pgcopy

pytestmark = pytest.mark.unit


def _row(fields: list[bytes | None]) -> bytes:
    out = struct.pack(">h", len(fields))
    for f in fields:
        out += struct.pack(">i", -1) if f is None else struct.pack(">i", len(f)) + f
    return out


def test_stream_matches_hand_packed_rows_with_nulls() -> None:
    ids = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    when = datetime(2025, 9, 20, 12, 0, 1, 250_000, tzinfo=UTC)
    unix_us = int(when.timestamp() * 1_000_000)
    labels = np.array([1, 0, 0])
    missing = np.array([False, True, False])
    payload = pgcopy.encode(
        [
            pgcopy.uuid_column(
                np.frombuffer(b"".join(u.bytes for u in ids), np.uint8).reshape(3, 16)
            ),
            pgcopy.text_constant("ulb:2025-09-20", 3),
            pgcopy.int8([5, 6, 2**40]),
            pgcopy.timestamptz_from_unix_us(np.array([unix_us] * 3)),
            pgcopy.float8([0.5, -1.25, 3.0]),
            pgcopy.int2(labels, missing),
        ]
    )
    pg_us = unix_us - 946_684_800 * 1_000_000

    def expected(i: int) -> bytes:
        return _row(
            [
                ids[i].bytes,
                b"ulb:2025-09-20",
                struct.pack(">q", [5, 6, 2**40][i]),
                struct.pack(">q", pg_us),
                struct.pack(">d", [0.5, -1.25, 3.0][i]),
                None if missing[i] else struct.pack(">h", labels[i]),
            ]
        )

    stream = b"".join(bytes(chunk) for chunk, _ in payload.chunks(rows_per_chunk=1))
    assert stream.startswith(b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    assert stream.endswith(b"\xff\xff")
    body = stream[len(pgcopy.HEADER) : -2]
    # Rows are grouped by NULL pattern: rows 0 and 2 first, then row 1.
    assert body == expected(0) + expected(2) + expected(1)
    assert payload.rows == 3
    assert sum(n for _, n in payload.chunks()) == 3


def test_hash_depends_on_values_only() -> None:
    a = pgcopy.encode([pgcopy.float8([1.0, 2.0])])
    b = pgcopy.encode([pgcopy.float8([1.0, 2.0])])
    c = pgcopy.encode([pgcopy.float8([1.0, 2.5])])
    assert a.sha256() == b.sha256() != c.sha256()


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        pgcopy.encode([pgcopy.float8([1.0]), pgcopy.float8([1.0, 2.0])])


def test_integer_and_boolean_columns_are_packed_as_postgresql_sends_them() -> None:
    payload = pgcopy.encode([pgcopy.int4([7, -2]), pgcopy.boolean([True, False])])

    body = b"".join(bytes(chunk) for chunk, _ in payload.records())

    assert body == (_row([struct.pack(">i", 7), b"\x01"]) + _row([struct.pack(">i", -2), b"\x00"]))


def _stream(columns: list[pgcopy.BinaryColumn]) -> bytes:
    return b"".join(bytes(piece) for piece, _ in pgcopy.encode(columns).chunks())


_DTYPES = ("S36", ">i8", ">f8")


def _columns(n: int) -> list[pgcopy.BinaryColumn]:
    rng = np.random.default_rng(n)
    ids = np.array([str(uuid.UUID(int=int(i))).encode() for i in rng.integers(0, 2**62, n)])
    return [
        pgcopy.BinaryColumn(ids.astype("S36")),
        pgcopy.int8(rng.integers(-(2**40), 2**40, n)),
        pgcopy.float8(rng.normal(size=n)),
    ]


@pytest.mark.parametrize("rows_per_block", [1, 7, 1000])
def test_reading_gives_back_every_row_however_the_stream_is_cut(rows_per_block: int) -> None:
    columns = _columns(250)
    stream = _stream(columns)
    rng = np.random.default_rng(rows_per_block)
    cuts = np.sort(rng.integers(0, len(stream), 40))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    blocks = list(pgcopy.decode_fixed_rows(pieces, _DTYPES, rows_per_block))

    assert [len(b) for b in blocks[:-1]] == [rows_per_block] * (len(blocks) - 1)
    assert 0 < len(blocks[-1]) <= rows_per_block
    rows = np.concatenate(blocks)
    for i, column in enumerate(columns):
        assert rows[f"c{i}"].tolist() == column.values.tolist()


def test_an_empty_result_is_no_block() -> None:
    assert list(pgcopy.decode_fixed_rows([_stream(_columns(0))], _DTYPES)) == []


def test_a_header_extension_is_skipped() -> None:
    stream = _stream(_columns(3))
    extended = pgcopy.SIGNATURE + bytes(4) + (4).to_bytes(4, "big") + b"XXXX"
    stream = extended + stream[len(pgcopy.HEADER) :]

    [rows] = pgcopy.decode_fixed_rows([stream], _DTYPES)

    assert len(rows) == 3


def test_a_null_or_a_value_of_another_width_is_refused() -> None:
    ids, ints, floats = _columns(4)
    with_null = _stream([ids, ints, pgcopy.float8(floats.values, np.array([0, 0, 1, 0], bool))])
    wider = _stream([pgcopy.BinaryColumn(ids.values.astype("S37")), ints, floats])
    for stream in (with_null, wider):
        with pytest.raises(pgcopy.CopyFormatError):
            list(pgcopy.decode_fixed_rows([stream], _DTYPES))


@pytest.mark.parametrize("damage", ["no signature", "truncated", "no trailer"])
def test_a_damaged_stream_is_refused(damage: str) -> None:
    stream = _stream(_columns(5))
    if damage == "no signature":
        stream = b"X" + stream[1:]
    elif damage == "truncated":
        stream = stream[:-30]
    else:
        stream = stream[: -len(pgcopy.TRAILER)]
    with pytest.raises(pgcopy.CopyFormatError):
        list(pgcopy.decode_fixed_rows([stream], _DTYPES))


def test_timestamptz_reads_back_as_floored_unix_milliseconds() -> None:
    unix_us = np.array([0, 1_758_326_400_123_999, -1, -1_001], dtype=np.int64)
    wire = pgcopy.timestamptz_from_unix_us(unix_us).values.astype(np.int64)

    assert pgcopy.unix_ms_from_timestamptz(wire).tolist() == [0, 1_758_326_400_123, -1, -2]
