"""The columnar Avro reader reads exactly what fastavro reads, and flags what it cannot read."""

from __future__ import annotations

import io
import math
import random
import uuid
from typing import Any

import fastavro
import numpy as np
import pytest

from fraudpipe.adapters.avro.codec.column_reader import FlatRecordReader, UnsupportedSchemaError

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Sample",
    "namespace": "test.v1",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "label", "type": "string"},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "small", "type": "int"},
        {"name": "x", "type": "double"},
        {"name": "flag", "type": "boolean"},
        {"name": "f", "type": "float"},
        {"name": "maybe", "type": ["null", "long"]},
        {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["R", "G", "B"]}},
        {"name": "blob", "type": "bytes"},
        {"name": "tag", "type": {"type": "fixed", "name": "Tag", "size": 3}},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [{"name": "y", "type": "double"}, {"name": "z", "type": "long"}],
            },
        },
    ]
    + [{"name": f"v{i}", "type": "double"} for i in range(1, 6)],
}
PARSED = fastavro.parse_schema(SCHEMA)


def without_logical_types(schema: Any) -> Any:
    """The same schema with logical types dropped, so fastavro returns the raw encoded values."""
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [without_logical_types(s) for s in schema]
    return schema


RAW = fastavro.parse_schema(without_logical_types(SCHEMA))


def random_record(rng: random.Random) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "label": "é" * rng.randint(0, 70),  # crosses the one-byte varint length at 64 chars
        "when": rng.choice([0, -1, 1, 2**62, -(2**63), 1_758_326_400_000 + rng.randint(0, 10**9)]),
        "small": rng.randint(-(2**31), 2**31 - 1),
        "x": rng.uniform(-1e300, 1e300),
        "flag": rng.random() < 0.5,
        "f": 1.5,
        "maybe": None if rng.random() < 0.5 else rng.randint(-(10**12), 10**12),
        "colour": rng.choice(["R", "G", "B"]),
        "blob": rng.randbytes(rng.randint(0, 200)),
        "tag": rng.randbytes(3),
        "inner": {"y": rng.random(), "z": rng.randint(-5, 5)},
        **{f"v{i}": rng.gauss(0, 1) for i in range(1, 6)},
    }


def encode(record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, RAW, record)
    return out.getvalue()


def fastavro_read(body: bytes) -> dict[str, Any]:
    result: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(body), RAW, None)
    return result


def pack(bodies: list[bytes], padding: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, bodies), dtype=np.int64, count=len(bodies))
    ends = np.cumsum(lengths)
    buffer = np.frombuffer(b"".join(bodies) + bytes(padding), dtype=np.uint8)
    return buffer, ends - lengths, ends


def test_matches_fastavro_on_random_records() -> None:
    rng = random.Random(7)
    records = [random_record(rng) for _ in range(500)]
    reader = FlatRecordReader(PARSED)
    cols = reader.read(*pack([encode(r) for r in records], reader.padding))

    assert cols.ok.all()
    for i, rec in enumerate(records):
        expected = fastavro_read(encode(rec))
        assert cols.text("id", i) == expected["id"]
        assert cols.text("label", i) == expected["label"]
        assert int(cols.numbers["when"][i]) == expected["when"]
        assert int(cols.numbers["small"][i]) == expected["small"]
        assert cols.numbers["x"][i] == expected["x"]
        assert bool(cols.numbers["flag"][i]) is expected["flag"]
        assert cols.numbers["f"][i] == expected["f"]
        assert bool(cols.present["maybe"][i]) is (expected["maybe"] is not None)
        if expected["maybe"] is not None:
            assert int(cols.numbers["maybe"][i]) == expected["maybe"]
        assert int(cols.numbers["colour"][i]) == ["R", "G", "B"].index(expected["colour"])
        start, length = cols.strings["blob"].starts[i], cols.strings["blob"].lengths[i]
        assert bytes(cols.buffer[start : start + length]) == expected["blob"]
        start = cols.strings["tag"].starts[i]
        assert bytes(cols.buffer[start : start + 3]) == expected["tag"]
        assert cols.numbers["inner.y"][i] == expected["inner"]["y"]
        assert int(cols.numbers["inner.z"][i]) == expected["inner"]["z"]
        for k in range(1, 6):
            assert cols.numbers[f"v{k}"][i] == expected[f"v{k}"]


def test_nan_and_infinity_survive_as_values() -> None:
    rng = random.Random(1)
    rec = random_record(rng) | {"x": math.nan, "v1": math.inf}
    reader = FlatRecordReader(PARSED)
    cols = reader.read(*pack([encode(rec)], reader.padding))
    assert cols.ok[0]
    assert math.isnan(cols.numbers["x"][0])
    assert cols.numbers["v1"][0] == math.inf


def test_truncated_overlong_and_garbage_bodies_are_flagged_not_guessed() -> None:
    rng = random.Random(3)
    good = [encode(random_record(rng)) for _ in range(4)]
    bodies = [
        good[0],
        good[1][:-1],  # truncated
        good[2] + b"\x00",  # trailing byte
        b"\xff" * 12,  # unterminated varint
        good[3],
        b"",
    ]
    reader = FlatRecordReader(PARSED)
    cols = reader.read(*pack(bodies, reader.padding))
    assert cols.ok.tolist() == [True, False, False, False, True, False]
    # The good rows around broken ones are still read correctly.
    assert cols.text("id", 4) == fastavro_read(good[3])["id"]


def test_bad_boolean_and_enum_index_are_flagged() -> None:
    schema = {
        "type": "record",
        "name": "Small",
        "fields": [
            {"name": "b", "type": "boolean"},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
        ],
    }
    reader = FlatRecordReader(fastavro.parse_schema(schema))
    # boolean byte 2 is not a boolean; enum zig-zag 0x0a is index 5 of 3 symbols.
    cols = reader.read(*pack([b"\x01\x04", b"\x02\x00", b"\x00\x0a"], reader.padding))
    assert cols.ok.tolist() == [True, False, False]
    assert bool(cols.numbers["b"][0]) is True
    assert int(cols.numbers["e"][0]) == 2


def test_fixed_width_view_of_a_string_column() -> None:
    rng = random.Random(9)
    records = [random_record(rng) for _ in range(20)]
    reader = FlatRecordReader(PARSED)
    cols = reader.read(*pack([encode(r) for r in records], reader.padding))
    matrix, fits = cols.fixed_width("id", 36)
    assert fits.all()
    assert [bytes(row).decode() for row in matrix] == [r["id"] for r in records]


def test_arrays_are_refused_when_the_reader_is_built() -> None:
    schema = {
        "type": "record",
        "name": "WithArray",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "long"}}],
    }
    with pytest.raises(UnsupportedSchemaError, match="xs"):
        FlatRecordReader(fastavro.parse_schema(schema))
