"""Deterministic identities: `transaction_id` from the source's identity of a row, `batch_id`.

A row keeps its id however often, and in whatever order, it is ingested: the id is made of the
source and `source_row` (the row's position in its source, or the source's own integer id for
it). A file without ids of its own names its rows by day and position instead (its batch id
stands for the source, `Source.ids_per_day`), so two days' files of one name never share an id.
Content plays no part, so the ULB file's 1,081 exact duplicate rows stay distinct
transactions, and a row sent again with other content keeps its id (and is a conflict).

The id is a UUID version 8 (RFC 9562's format for custom layouts), built with numpy for a
whole day at once instead of a SHA-1 per row (UUIDv5 took half of the client's ingest time)::

    bytes 0-5   48 bits of SHA-256(FRAUDPIPE_NAMESPACE + source)
    byte  6     version 8 (high nibble), 4 more bits of that hash
    byte  7     6 more bits of that hash, then the top 2 bits of source_row
    byte  8     variant 0b10, then the next 6 bits of source_row
    bytes 9-15  the low 56 bits of source_row

So 58 bits name the source and all 64 bits of `source_row` (two's complement) are kept whole:
two rows of one source never share an id, rows of two sources only if their 58-bit source
hashes collide (one chance in ~10^17 per pair of sources), and `source_row_of` gives the row
back. Ids of one source sort by `source_row`, which keeps primary-key builds and probes local.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt

FRAUDPIPE_NAMESPACE: Final = uuid.UUID("6f1d0c4e-8a53-5c2e-9d0b-3e7a4f1b2c90")
"""Namespace of every transaction id. Fixed forever: changing it changes every id."""


def transaction_id(source: str, source_row: int) -> uuid.UUID:
    """The id of one row (the scalar twin of `transaction_ids`).

    Args:
        source: The source's name, e.g. ``"ulb"``, ``"synthetic-s7"``, ``"file:cards"``.
        source_row: The row's position in the source, or the source's own id for it (int64).
    """
    return uuid.UUID(bytes=transaction_ids(source, np.array([source_row], np.int64))[0].tobytes())


def transaction_ids(source: str, source_rows: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """The ids of many rows of one source, as an n×16 array of UUID bytes.

    Args:
        source: The source's name.
        source_rows: Each row's position or own id (int64, one per row).

    Returns:
        An n×16 uint8 array; row i holds the 16 bytes of row i's UUID.
    """
    prefix = np.frombuffer(_source_hash(source), dtype=np.uint8)
    # Big-endian bytes of each row as an unsigned 64-bit number (two's complement of int64).
    row = np.ascontiguousarray(source_rows, dtype=np.int64).view(np.uint64).astype(">u8")
    rb = row.view(np.uint8).reshape(-1, 8)
    ids = np.empty((len(row), 16), dtype=np.uint8)
    ids[:, 0:6] = prefix[0:6]
    ids[:, 6] = 0x80 | (prefix[6] & 0x0F)  # version 8
    ids[:, 7] = (prefix[7] & 0xFC) | (rb[:, 0] >> 6)  # the row's top 2 bits
    ids[:, 8] = 0x80 | (rb[:, 0] & 0x3F)  # variant 0b10, then the row's next 6 bits
    ids[:, 9:16] = rb[:, 1:8]  # the row's low 56 bits
    return ids


def source_row_of(transaction: uuid.UUID) -> int:
    """The `source_row` a transaction id was made from (its inverse, for lineage and tests)."""
    b = transaction.bytes
    top = ((b[7] & 0x03) << 6) | (b[8] & 0x3F)
    value = (top << 56) | int.from_bytes(b[9:16], "big")
    return value - (1 << 64) if value >= 1 << 63 else value


def batch_id(source: str, day: date) -> str:
    """The id of a source's batch for one calendar day (UTC), e.g. ``"ulb:2025-09-20"``."""
    return f"{source}:{day.isoformat()}"


def _source_hash(source: str) -> bytes:
    return hashlib.sha256(FRAUDPIPE_NAMESPACE.bytes + source.encode()).digest()[:8]
