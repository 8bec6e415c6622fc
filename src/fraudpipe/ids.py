"""Deterministic identities: `transaction_id` from the source's identity of a row, `batch_id`.

A row keeps its id however often, and in whatever order, it is ingested: the id is the UUID
version 5 of ``f"{source}:{source_row}"`` in `FRAUDPIPE_NAMESPACE`, where `source_row` is the
row's position in its source or the source's own integer id for the row. Content plays no part,
so the ULB file's 1,081 exact duplicate rows stay distinct transactions.
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
        source_row: The row's position in the source, or the source's own id for it.

    Returns:
        ``uuid5(FRAUDPIPE_NAMESPACE, f"{source}:{source_row}")``.
    """
    return uuid.uuid5(FRAUDPIPE_NAMESPACE, f"{source}:{source_row}")


def transaction_ids(source: str, source_rows: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """The ids of many rows of one source, as an n×16 array of UUID bytes.

    Equal to ``transaction_id(source, r).bytes`` for each `r`, about twice as fast as calling
    `uuid.uuid5` per row: the namespace+source prefix is hashed once and each row only adds its
    digits, and the version/variant bits are set on the whole array at once.

    Args:
        source: The source's name.
        source_rows: Each row's position or own id (int64, one per row).

    Returns:
        An n×16 uint8 array; row i holds the 16 bytes of row i's UUID.
    """
    prefix = hashlib.sha1(FRAUDPIPE_NAMESPACE.bytes + f"{source}:".encode(), usedforsecurity=False)
    fresh = prefix.copy

    def digest(row: int) -> bytes:
        h = fresh()
        h.update(b"%d" % row)
        return h.digest()[:16]

    rows = source_rows.tolist()
    raw = b"".join([digest(r) for r in rows])
    ids = np.frombuffer(raw, dtype=np.uint8).reshape(len(rows), 16).copy()
    # RFC 9562: version 5 in the high nibble of byte 6, variant 0b10 in the top bits of byte 8.
    ids[:, 6] = (ids[:, 6] & 0x0F) | 0x50
    ids[:, 8] = (ids[:, 8] & 0x3F) | 0x80
    return ids


def batch_id(source: str, day: date) -> str:
    """The id of a source's batch for one calendar day (UTC), e.g. ``"ulb:2025-09-20"``."""
    return f"{source}:{day.isoformat()}"
