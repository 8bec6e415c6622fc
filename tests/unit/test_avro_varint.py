"""The one zig-zag varint the Avro codecs share writes and reads exactly fastavro's bytes."""

from __future__ import annotations

import io

import fastavro
import numpy as np
import pytest

from fraudpipe.adapters.avro.codec import varint

pytestmark = pytest.mark.unit

EDGES = [0, 1, -1, 63, -64, 64, -65, 127, 128, 2**31, -(2**31), 2**62, -(2**63), 2**63 - 1]
LONG = fastavro.parse_schema({"type": "long"})


def fastavro_long(value: int) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, LONG, value)
    return out.getvalue()


def sample() -> list[int]:
    rng = np.random.default_rng(7)
    # Every width from 1 to 10 bytes, both signs.
    magnitudes = [
        int(m) for m in rng.integers(0, 2**63 - 1, 200, dtype=np.int64) >> rng.integers(0, 63, 200)
    ]
    return EDGES + magnitudes + [-m for m in magnitudes]


@pytest.mark.parametrize("value", EDGES)
def test_encode_matches_fastavro(value: int) -> None:
    assert varint.encode(value) == fastavro_long(value)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_encode_refuses_what_a_long_cannot_hold(value: int) -> None:
    with pytest.raises(OverflowError):
        varint.encode(value)


def test_encode_many_matches_fastavro_row_by_row() -> None:
    values = sample()
    matrix, widths = varint.encode_many(np.array(values, dtype=np.int64))
    for row, width, value in zip(matrix, widths, values, strict=True):
        assert bytes(row[:width]) == fastavro_long(value), value


def test_decode_many_reads_fastavro_bytes_and_their_widths() -> None:
    values = sample()
    encoded = [fastavro_long(v) for v in values]
    window = np.zeros((len(values), varint.MAX_BYTES), dtype=np.uint8)
    for row, data in zip(window, encoded, strict=True):
        row[: len(data)] = np.frombuffer(data, np.uint8)
    decoded, nbytes, terminated = varint.decode_many(window)
    assert decoded.tolist() == values
    assert nbytes.tolist() == [len(d) for d in encoded]
    assert terminated.all()


def test_decode_many_flags_a_varint_that_never_ends() -> None:
    window = np.full((1, varint.MAX_BYTES), 0x80, dtype=np.uint8)
    assert not varint.decode_many(window)[2][0]
