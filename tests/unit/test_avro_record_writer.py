"""The planned encoder writes fastavro's exact bytes, or leaves a record to fastavro."""

from __future__ import annotations

import io
import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest

from fraudpipe.adapters.avro import Contract, load_schema_str
from fraudpipe.adapters.avro.codec.record_writer import FlatRecordEncoder, plan_flat_encoder
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.records import AlertDriver, DecisionRecord, TransactionRecord, to_dict

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Sample",
    "namespace": "test.v1",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "label", "type": "string"},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "count", "type": "long"},
        {"name": "small", "type": "int"},
        {"name": "x", "type": "double"},
        {"name": "flag", "type": "boolean"},
        {"name": "f", "type": "float"},
        {"name": "y", "type": "double"},
        {"name": "channel", "type": "string", "default": "pos"},
    ],
}
PARSED = fastavro.parse_schema(SCHEMA)

_EDGE_DOUBLES = [
    0.0,
    -0.0,
    1.0,
    -1.5,
    math.nan,
    math.inf,
    -math.inf,
    5e-324,
    1.7976931348623157e308,
]
_EDGE_LONGS = [0, -1, 1, 63, 64, -64, -65, 2**31, -(2**31), 2**63 - 1, -(2**63)]


def _encoder(parsed: Any = PARSED) -> FlatRecordEncoder:
    encoder = plan_flat_encoder(parsed)
    assert encoder is not None
    return encoder


def _fastavro(datum: dict[str, Any], parsed: Any = PARSED) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, datum)
    return buffer.getvalue()


def _random_datum(rng: random.Random) -> dict[str, Any]:
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=rng.randrange(-(6 * 10**16), 6 * 10**16)
    )
    if rng.random() < 0.3:
        when = when.astimezone(timezone(timedelta(hours=rng.randrange(-12, 13))))
    label = "".join(rng.choice("abcé€𝄞 :-") for _ in range(rng.choice([0, 1, 20, 63, 64, 200])))
    return {
        "id": uuid.UUID(int=rng.getrandbits(128)) if rng.random() < 0.8 else str(uuid.uuid4()),
        "label": label,
        "when": when if rng.random() < 0.8 else rng.randrange(-(2**62), 2**62),
        "count": rng.choice(_EDGE_LONGS) if rng.random() < 0.3 else rng.randrange(-(2**40), 2**40),
        "small": rng.randrange(-(2**31), 2**31),
        "x": rng.choice(_EDGE_DOUBLES) if rng.random() < 0.3 else rng.uniform(-1e6, 1e6),
        "flag": rng.random() < 0.5,
        "f": rng.uniform(-1e30, 1e30) if rng.random() < 0.9 else math.nan,
        "y": rng.choice([rng.gauss(0, 1), 3, True]),  # ints and bools are doubles to fastavro too
        "channel": rng.choice(["web", "pos", "ü"]),
    }


def test_random_records_match_fastavro_byte_for_byte() -> None:
    encoder = _encoder()
    rng = random.Random(20250920)

    for _ in range(3_000):
        datum = _random_datum(rng)
        assert encoder.encode(datum) == _fastavro(datum), datum


def test_transaction_contract_matches_fastavro() -> None:
    parsed = fastavro.parse_schema(json.loads(load_schema_str(Contract.TRANSACTION)))
    encoder = _encoder(parsed)
    rng = random.Random(7)
    for i in range(500):
        record = TransactionRecord(
            uuid.uuid5(uuid.NAMESPACE_URL, f"ulb:{i}"),
            "ulb:2025-09-20",
            "ulb",
            datetime(2025, 9, 20, tzinfo=UTC) + timedelta(seconds=rng.randrange(86_400)),
            round(rng.uniform(0, 5_000), 2),
            *(rng.gauss(0, 2) for _ in range(28)),
        )
        datum = to_dict(record)
        assert encoder.encode(datum) == _fastavro(datum, parsed)


def _decision(rng: random.Random, drivers: int) -> DecisionRecord:
    return DecisionRecord(
        request_id=uuid.UUID(int=rng.getrandbits(128)),
        client=rng.choice(["local", "ops"]),
        transaction_id=uuid.UUID(int=rng.getrandbits(128)),
        batch_id="api",
        source="pos",
        event_time=datetime(2026, 12, 5, tzinfo=UTC) + timedelta(milliseconds=rng.randrange(10**8)),
        **{c: rng.gauss(0, 3) for c in FEATURE_COLUMNS},
        model_name="fraud-detector",
        model_version=rng.randrange(1, 9),
        score=rng.random(),
        threshold=0.5,
        is_fraud=drivers > 0,
        reasons_method="linear" if drivers else "",
        top_drivers=tuple(
            AlertDriver(f"v{rng.randrange(1, 29)}", rng.uniform(0, 4), rng.choice(["", "low"]))
            for _ in range(drivers)
        ),
        decided_at=datetime(2026, 12, 5, 9, tzinfo=UTC),
    )


def test_decision_contract_with_its_reasons_matches_fastavro() -> None:
    parsed = fastavro.parse_schema(json.loads(load_schema_str(Contract.DECISION)))
    encoder = _encoder(parsed)
    rng = random.Random(11)
    for i in range(300):
        datum = _decision(rng, drivers=i % 4).to_dict()
        assert encoder.encode(datum) == _fastavro(datum, parsed)


@pytest.mark.parametrize(
    "drivers",
    [
        "not a list",
        [{"feature": 14, "contribution": 1.0, "description": ""}],  # not a string
        [("v14", 1.0, "")],  # not a mapping
        [{"contribution": 1.0, "description": ""}],  # no feature, which has no default
    ],
    ids=repr,
)
def test_reasons_it_cannot_prove_equal_are_left_to_fastavro(drivers: Any) -> None:
    parsed = fastavro.parse_schema(json.loads(load_schema_str(Contract.DECISION)))
    datum = _decision(random.Random(5), drivers=2).to_dict()
    datum["top_drivers"] = drivers

    assert _encoder(parsed).encode(datum) is None


def test_missing_fields_take_the_default_and_extra_keys_are_ignored() -> None:
    datum = _random_datum(random.Random(1))
    del datum["channel"]
    datum["not_in_schema"] = object()

    assert _encoder().encode(datum) == _fastavro(datum)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("when", datetime(2025, 9, 20, 12, 0)),  # naive: fastavro reads it as local time
        ("count", 2**63),  # beyond a C long
        ("small", 1.5),  # a float where an int goes
        ("label", b"bytes"),  # not a str
        ("x", "1.5"),  # fastavro float()s strings; struct does not
        ("x", None),
        ("f", 1e39),  # beyond float32: fastavro writes inf, struct refuses
        ("id", 42),
    ],
)
def test_values_it_cannot_prove_equal_are_left_to_fastavro(field: str, value: Any) -> None:
    datum = _random_datum(random.Random(2))
    datum[field] = value

    assert _encoder().encode(datum) is None


def test_a_missing_field_without_default_is_left_to_fastavro() -> None:
    datum = _random_datum(random.Random(3))
    del datum["x"]

    assert _encoder().encode(datum) is None
    with pytest.raises(ValueError, match="no value and no default"):
        _fastavro(datum)


@pytest.mark.parametrize(
    "field_type",
    [
        ["null", "double"],
        {"type": "array", "items": "double"},
        {"type": "map", "values": "long"},
        {"type": "enum", "name": "E", "symbols": ["A"]},
        {"type": "fixed", "name": "F", "size": 2},
        "bytes",
        {"type": "int", "logicalType": "date"},
        {"type": "long", "logicalType": "timestamp-micros"},
        {"type": "record", "name": "Inner", "fields": [{"name": "a", "type": "double"}]},
    ],
    ids=repr,
)
def test_schemas_with_other_field_types_get_no_encoder(field_type: Any) -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "a", "type": "double"}, {"name": "b", "type": field_type}],
    }

    assert plan_flat_encoder(fastavro.parse_schema(schema)) is None


def test_fixed_width_runs_are_packed_once() -> None:
    # Guards the plan itself: the transaction's 29 doubles must be one struct call, not 29.
    parsed = fastavro.parse_schema(json.loads(load_schema_str(Contract.TRANSACTION)))
    encoder = _encoder(parsed)

    assert len(encoder._segments) == 5  # uuid, batch, source, event time, 29 doubles
