"""The vectorised row encoder writes exactly fastavro's bytes behind the Confluent header."""

from __future__ import annotations

import io
import random
import uuid
from typing import Any

import fastavro
import numpy as np
import pytest

from fraudpipe.adapters.avro.codec.column_reader import UnsupportedSchemaError
from fraudpipe.adapters.avro.codec.row_writer import (
    Categorical,
    Constant,
    FixedText,
    RowEncoder,
    confluent_header,
)

pytestmark = pytest.mark.unit

SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Out",
        "namespace": "test.v1",
        "fields": [
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "group", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "version", "type": "int"},
            {"name": "score", "type": "double"},
            {"name": "hit", "type": "boolean"},
            {"name": "small", "type": "float"},
            {"name": "when", "type": "long"},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    }
)
RAW = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Out",
        "namespace": "test.v1",
        "fields": [
            {"name": n, "type": t}
            for n, t in [
                ("id", "string"),
                ("group", "string"),
                ("name", "string"),
                ("version", "int"),
                ("score", "double"),
                ("hit", "boolean"),
                ("small", "float"),
                ("when", "long"),
                ("at", "long"),
            ]
        ],
    }
)


def fastavro_bytes(record: dict[str, Any], schema_id: int) -> bytes:
    out = io.BytesIO()
    out.write(confluent_header(schema_id))
    fastavro.schemaless_writer(out, RAW, record)
    return out.getvalue()


@pytest.mark.parametrize("varying_longs", [False, True])
def test_matches_fastavro(varying_longs: bool) -> None:
    rng = random.Random(11)
    n = 300
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)]
    groups = ["ulb:2025-09-20", "synthetic-s7:2025-09-22", "é" * 70]  # widths 15, 24, 141
    codes = np.array([rng.randrange(3) for _ in range(n)])
    scores = np.array([rng.random() for _ in range(n)])
    hits = scores > 0.5
    if varying_longs:
        when = np.array([rng.choice([0, -1, 63, 64, -(2**63), 2**63 - 1]) for _ in range(n)])
    else:
        when = np.array([1_758_326_400_000 + rng.randrange(10**8) for _ in range(n)])
    id_matrix = np.frombuffer("".join(ids).encode(), np.uint8).reshape(n, 36)

    encoder = RowEncoder(SCHEMA, schema_id=42)
    got = encoder.encode(
        {
            "id": FixedText(id_matrix),
            "group": Categorical(codes, groups),
            "name": Constant("fraud-detector"),
            "version": Constant(3),
            "score": scores,
            "hit": hits,
            "small": Constant(0.25),
            "when": when,
            "at": Constant(1_764_000_000_123),
        },
        n,
    )

    for i in range(n):
        expected = fastavro_bytes(
            {
                "id": ids[i],
                "group": groups[codes[i]],
                "name": "fraud-detector",
                "version": 3,
                "score": float(scores[i]),
                "hit": bool(hits[i]),
                "small": 0.25,
                "when": int(when[i]),
                "at": 1_764_000_000_123,
            },
            42,
        )
        assert got[i] == expected, i


def test_empty_batch_encodes_to_nothing() -> None:
    assert RowEncoder(SCHEMA, 1).encode({}, 0) == []


def test_refuses_unions() -> None:
    schema = fastavro.parse_schema(
        {"type": "record", "name": "U", "fields": [{"name": "x", "type": ["null", "long"]}]}
    )
    with pytest.raises(UnsupportedSchemaError):
        RowEncoder(schema, 1)
