"""PostgreSQL's binary COPY format, built and read with numpy instead of one Python call per row.

A binary COPY stream is a header, then per row a 16-bit field count and per field a 32-bit
length (-1 for NULL) followed by the value in network byte order, then a trailer. When every
field has a fixed width, a row is a fixed-layout record: a numpy structured array with
big-endian fields *is* the stream, and filling it is one vectorised copy per column.
Rows with NULLs have a different layout, so rows are grouped by which columns are NULL; row
order inside a COPY does not matter.

Measured by `bench/wire_codecs.py` (2 cores, 2026-12-03): a ULB day of 144,786 rows from its numpy
columns to COPY bytes took psycopg's way (the Python objects it needs, then `Copy.write_row`)
139,082 rows/s, and this encoder 2,641,298 rows/s (19×); the bytes are psycopg's
(`tests/integration/test_pgcopy_matches_psycopg.py`).

Reading (`decode_fixed_rows`) is the same idea the other way round: a ``COPY (SELECT …) TO
STDOUT (FORMAT BINARY)`` of fixed-width, NOT NULL columns is cut into structured arrays, and
every row's field count and lengths are checked against the layout before a value is used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from fraudpipe.errors import FraudpipeError

SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
HEADER: Final = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER: Final = (-1).to_bytes(2, "big", signed=True)

POSTGRES_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_UNIX_TO_POSTGRES_US: Final = int(POSTGRES_EPOCH.timestamp()) * 1_000_000


@dataclass(frozen=True)
class BinaryColumn:
    """One column's values in PostgreSQL binary form, fixed width per row.

    Attributes:
        values: 1-D array whose dtype is the wire form: ``>f8`` (double precision), ``>i8``
            (bigint, timestamptz), ``>i4`` (integer), ``>i2`` (smallint), ``u1`` (boolean),
            ``S16`` (uuid), ``S<k>`` (text of k bytes).
        nulls: True where the value is NULL; None when the column has no NULLs.
    """

    values: npt.NDArray[np.generic]
    nulls: npt.NDArray[np.bool_] | None = None


def float8(values: npt.ArrayLike, nulls: npt.NDArray[np.bool_] | None = None) -> BinaryColumn:
    """A ``double precision`` column."""
    return BinaryColumn(np.asarray(values, dtype=">f8"), nulls)


def int8(values: npt.ArrayLike) -> BinaryColumn:
    """A ``bigint`` column."""
    return BinaryColumn(np.asarray(values, dtype=">i8"))


def int2(values: npt.ArrayLike, nulls: npt.NDArray[np.bool_] | None = None) -> BinaryColumn:
    """A ``smallint`` column."""
    return BinaryColumn(np.asarray(values, dtype=">i2"), nulls)


def int4(values: npt.ArrayLike) -> BinaryColumn:
    """An ``integer`` column."""
    return BinaryColumn(np.asarray(values, dtype=">i4"))


def boolean(values: npt.ArrayLike) -> BinaryColumn:
    """A ``boolean`` column (one byte, 0 or 1)."""
    return BinaryColumn(np.asarray(values, dtype=bool).astype(np.uint8))


def uuid_column(id_bytes: npt.NDArray[np.uint8]) -> BinaryColumn:
    """A ``uuid`` column from an n×16 array of UUID bytes."""
    return BinaryColumn(np.ascontiguousarray(id_bytes, dtype=np.uint8).view("S16").reshape(-1))


def text_constant(value: str, n: int) -> BinaryColumn:
    """A ``text`` column holding the same value in all `n` rows (e.g. a batch id)."""
    encoded = value.encode()
    return BinaryColumn(np.full(n, encoded, dtype=f"S{len(encoded)}"))


def timestamptz_from_unix_us(unix_us: npt.NDArray[np.int64]) -> BinaryColumn:
    """A ``timestamptz`` column from microseconds since 1970-01-01 UTC.

    PostgreSQL stores microseconds since 2000-01-01 UTC, whatever the session time zone.
    """
    return BinaryColumn((np.asarray(unix_us, dtype=np.int64) - _UNIX_TO_POSTGRES_US).astype(">i8"))


def unix_ms_from_timestamptz(postgres_us: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Milliseconds since 1970-01-01 UTC, floored (as Avro's timestamp-millis and fastavro
    have it), from a ``timestamptz`` column's microseconds since 2000-01-01 UTC."""
    return (np.asarray(postgres_us, dtype=np.int64) + _UNIX_TO_POSTGRES_US) // 1000


@dataclass(frozen=True)
class BinaryCopyPayload:
    """Rows ready for ``COPY ... FROM STDIN (FORMAT BINARY)``.

    Attributes:
        groups: Structured arrays, one per NULL pattern; each record is one row on the wire.
        rows: Total number of rows.
    """

    groups: list[npt.NDArray[np.void]]
    rows: int

    def chunks(self, rows_per_chunk: int = 16_384) -> Iterator[tuple[memoryview, int]]:
        """The stream in pieces: (bytes, rows in them), header first and trailer last."""
        yield memoryview(HEADER), 0
        yield from self.records(rows_per_chunk)
        yield memoryview(TRAILER), 0

    def records(self, rows_per_chunk: int = 16_384) -> Iterator[tuple[memoryview, int]]:
        """The rows alone, without header or trailer: one COPY can carry many payloads."""
        for group in self.groups:
            for start in range(0, len(group), rows_per_chunk):
                piece = group[start : start + rows_per_chunk]
                yield piece.data.cast("B"), len(piece)

    def sha256(self) -> str:
        """Hex SHA-256 of the rows on the wire: equal rows (ids, values) give equal hashes."""
        digest = hashlib.sha256()
        for group in self.groups:
            digest.update(group.data.cast("B"))
        return digest.hexdigest()


def encode(columns: Sequence[BinaryColumn]) -> BinaryCopyPayload:
    """Lay out rows in binary COPY form.

    Args:
        columns: One entry per table column, in the COPY statement's column order, all of the
            same length.

    Returns:
        The payload; stream it with `BinaryCopyPayload.chunks`.
    """
    n = len(columns[0].values) if columns else 0
    if any(len(c.values) != n for c in columns):
        raise ValueError("binary COPY columns differ in length")
    nullable = [i for i, c in enumerate(columns) if c.nulls is not None and c.nulls.any()]
    if not nullable:
        return BinaryCopyPayload([_fill(columns, np.arange(n), frozenset())], n)
    pattern = np.zeros(n, dtype=np.int64)
    for bit, i in enumerate(nullable):
        nulls = columns[i].nulls
        assert nulls is not None
        pattern |= nulls.astype(np.int64) << bit
    groups = []
    for key in np.unique(pattern):
        rows = np.flatnonzero(pattern == key)
        null_columns = frozenset(i for bit, i in enumerate(nullable) if (int(key) >> bit) & 1)
        groups.append(_fill(columns, rows, null_columns))
    return BinaryCopyPayload(groups, n)


def row_layout(dtypes: Sequence[str], null_columns: frozenset[int] = frozenset()) -> np.dtype:
    """The wire layout of one row: field count, then per column its length and (unless NULL)
    its value, packed with no padding."""
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, dtype in enumerate(dtypes):
        fields.append((f"l{i}", ">i4"))
        if i not in null_columns:
            fields.append((f"c{i}", dtype))
    return np.dtype(fields, align=False)


def _prefix(layout: np.dtype, dtypes: Sequence[str], null_columns: frozenset[int]) -> bytes:
    """One row with its field count and lengths filled in and its values zero."""
    prefix = np.zeros((), dtype=layout)
    prefix["count"] = len(dtypes)
    for i, dtype in enumerate(dtypes):
        prefix[f"l{i}"] = -1 if i in null_columns else np.dtype(dtype).itemsize
    return prefix.tobytes()


def _fill(
    columns: Sequence[BinaryColumn], rows: npt.NDArray[np.intp], null_columns: frozenset[int]
) -> npt.NDArray[np.void]:
    dtypes = [column.values.dtype.str for column in columns]
    layout = row_layout(dtypes, null_columns)
    # The field count and the lengths are the same in every row: one template row, copied in
    # as bytes, costs a tenth of writing each length field on its own.
    records = np.empty(len(rows), dtype=layout)
    records.view(np.uint8).reshape(len(rows), layout.itemsize)[...] = np.frombuffer(
        _prefix(layout, dtypes, null_columns), dtype=np.uint8
    )
    whole = len(rows) == len(columns[0].values) if columns else True
    for i, column in enumerate(columns):
        if i not in null_columns:
            records[f"c{i}"] = column.values if whole else column.values[rows]
    return records


class CopyFormatError(FraudpipeError):
    """A binary COPY stream that does not have the layout its reader expects."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"binary COPY stream: {detail}")


class _RowCheck:
    """Checks that every row of a block has the expected field count and field lengths (a NULL
    or a value of another width would shift every later field)."""

    def __init__(self, dtypes: Sequence[str]) -> None:
        self.layout = row_layout(dtypes)
        template = np.frombuffer(_prefix(self.layout, dtypes, frozenset()), dtype=np.uint8)
        offsets = [self.layout.fields[f"l{i}"][1] for i in range(len(dtypes))]  # type: ignore[index]
        positions = [(0, 2)] + [(offset, offset + 4) for offset in offsets]
        self._where = np.concatenate([np.arange(a, b) for a, b in positions])
        self._expected = template[self._where]

    def __call__(self, records: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
        raw = records.view(np.uint8).reshape(len(records), self.layout.itemsize)
        if not bool((raw[:, self._where] == self._expected).all()):
            raise CopyFormatError(
                "a row has a NULL, another number of fields, or a value of another width than "
                "the query's columns"
            )
        return records


def decode_fixed_rows(
    pieces: Iterable[bytes | bytearray | memoryview],
    dtypes: Sequence[str],
    rows_per_block: int = 16_384,
) -> Iterator[npt.NDArray[np.void]]:
    """Cut a binary COPY stream of fixed-width, NOT NULL columns into structured arrays.

    Args:
        pieces: The stream as it arrives (`psycopg.Copy` yields it message by message), cut
            anywhere.
        dtypes: Each column's wire dtype, as in `BinaryColumn` (``>f8``, ``>i8`` for
            timestamptz, ``S36`` for a uuid cast to text...).
        rows_per_block: Rows per array yielded (the last holds the rest).

    Yields:
        Arrays of `row_layout(dtypes)`: column ``i`` is field ``c{i}``, in network byte order.

    Raises:
        CopyFormatError: Bad header or trailer, a NULL, or a field of another width.
    """
    check = _RowCheck(dtypes)
    width = check.layout.itemsize
    block_bytes = rows_per_block * width
    parts: list[bytes | bytearray | memoryview] = []
    size = 0
    body_start: int | None = None  # offset of the first row, once the header was read
    for piece in pieces:
        parts.append(piece)
        size += len(piece)
        if size < block_bytes + len(HEADER):
            continue
        blob = b"".join(parts)
        if body_start is None:
            body_start = _header_length(blob)
        whole = (len(blob) - body_start) // width
        rows = whole - whole % rows_per_block
        records = check(np.frombuffer(blob, check.layout, count=rows, offset=body_start))
        for start in range(0, rows, rows_per_block):
            yield records[start : start + rows_per_block]
        rest = blob[body_start + rows * width :]
        parts, size, body_start = [rest], len(rest), 0
    blob = b"".join(parts)
    if body_start is None:
        body_start = _header_length(blob)
    body = len(blob) - body_start - len(TRAILER)
    if body < 0 or not blob.endswith(TRAILER) or body % width:
        raise CopyFormatError("the stream does not end in whole rows and the trailer")
    records = check(np.frombuffer(blob, check.layout, count=body // width, offset=body_start))
    for start in range(0, len(records), rows_per_block):
        yield records[start : start + rows_per_block]


def _header_length(blob: bytes) -> int:
    if len(blob) < len(HEADER) or not blob.startswith(SIGNATURE):
        raise CopyFormatError("no PGCOPY signature")
    extension = int.from_bytes(blob[len(SIGNATURE) + 4 : len(HEADER)], "big")
    return len(HEADER) + extension
