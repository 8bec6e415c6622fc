"""Avro's zig-zag varint, the encoding of every int, long and length: the one implementation the
codecs share, for one value (the per-record writer) and for many at once (the column-wise
reader and writer).

A long is zig-zagged (``(n << 1) ^ (n >> 63)``, so small magnitudes of either sign are small)
and written seven bits at a time, low bits first, the top bit of each byte saying another
follows: at most ten bytes. `tests/unit/test_avro_varint.py` checks every function here against
fastavro's own encoding.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

MAX_BYTES: Final = 10
"""Longest varint of a 64-bit value."""

LONG_MIN: Final = -(1 << 63)
LONG_MAX: Final = (1 << 63) - 1

#: Each zig-zagged value below 128 is its own one byte (the length of any string under 64 bytes).
_ONE_BYTE: Final = tuple(bytes((z,)) for z in range(0x80))
_SHIFTS: Final = np.arange(MAX_BYTES, dtype=np.uint64) * np.uint64(7)

Bytes2D = npt.NDArray[np.uint8]
Int64s = npt.NDArray[np.int64]


def encode(n: int) -> bytes:
    """The varint of one long.

    Raises:
        OverflowError: `n` is outside the 64-bit range (which fastavro's C writer cannot hold).
    """
    if not LONG_MIN <= n <= LONG_MAX:
        raise OverflowError(f"{n} is outside Avro's long range")
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _ONE_BYTE[z]
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def encode_many(values: npt.NDArray[np.int64]) -> tuple[Bytes2D, Int64s]:
    """The varints of many longs: an n×`MAX_BYTES` byte matrix, and each row's used width."""
    signed = values.astype(np.int64)
    unsigned = (signed.astype(np.uint64) << np.uint64(1)) ^ (signed >> 63).astype(np.uint64)
    groups = (unsigned[:, None] >> _SHIFTS) & np.uint64(0x7F)
    # Width = index of the highest non-zero 7-bit group + 1 (at least one byte for zero).
    nonzero = groups != 0
    width = np.where(nonzero.any(axis=1), MAX_BYTES - nonzero[:, ::-1].argmax(axis=1), 1)
    more = np.arange(MAX_BYTES) < (width[:, None] - 1)
    matrix = (groups | np.where(more, np.uint64(0x80), np.uint64(0))).astype(np.uint8)
    return matrix, width.astype(np.int64)


def decode_many(window: Bytes2D) -> tuple[Int64s, Int64s, npt.NDArray[np.bool_]]:
    """The longs whose varints start each row of `window` (n×`MAX_BYTES` bytes).

    Returns:
        The values, how many bytes each varint took, and whether it ended within `MAX_BYTES`
        bytes (a row that did not is corrupt; its value and width are then meaningless).
    """
    stops = window < 0x80
    terminated = np.asarray(stops.any(axis=1), dtype=np.bool_)
    nbytes = np.where(terminated, stops.argmax(axis=1) + 1, 1)
    used = np.arange(MAX_BYTES) < nbytes[:, None]
    payload = np.where(used, (window & 0x7F).astype(np.uint64), np.uint64(0)) << _SHIFTS
    unsigned = np.bitwise_or.reduce(payload, axis=1)
    value: Int64s = (unsigned >> np.uint64(1)).astype(np.int64) ^ -(unsigned & np.uint64(1)).astype(
        np.int64
    )
    return value, nbytes.astype(np.int64), terminated
