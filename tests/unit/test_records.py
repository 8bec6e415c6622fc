"""The typed records stay in step with contracts/*.avsc, round-trip through Avro, and refuse
values the contracts forbid."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastavro
import pytest

from fraudpipe.adapters.avro import Contract, load_schema_str
from fraudpipe.columns import MODEL_INPUT_COLUMNS
from fraudpipe.errors import ContractFileError, ContractViolationError
from fraudpipe.records import (
    AlertDriver,
    AlertRecord,
    DecisionRecord,
    PredictionRecord,
    TransactionRecord,
    to_dict,
)

pytestmark = pytest.mark.unit

EVENT = datetime(2025, 9, 20, 13, 45, 7, 123000, tzinfo=UTC)


def _transaction(**changes: Any) -> TransactionRecord:
    values: dict[str, Any] = {
        "transaction_id": uuid.UUID("0b6b1b0e-3c0a-5f7e-8d7a-2b1f5e4c3d2a"),
        "batch_id": "ulb:2025-09-20",
        "source": "ulb",
        "event_time": EVENT,
        "amount": 149.62,
        **{f"v{i}": (-1) ** i * i / 7 for i in range(1, 29)},
    }
    return TransactionRecord(**{**values, **changes})


def _prediction(**changes: Any) -> PredictionRecord:
    values: dict[str, Any] = {
        "transaction_id": uuid.uuid4(),
        "batch_id": "ulb:2025-09-20",
        "model_name": "fraud-detector",
        "model_version": 3,
        "score": 0.91,
        "is_fraud": True,
        "threshold": 0.42,
        "scored_at": EVENT + timedelta(seconds=2),
    }
    return PredictionRecord(**{**values, **changes})


def _alert(**changes: Any) -> AlertRecord:
    values: dict[str, Any] = {
        "transaction_id": uuid.uuid4(),
        "batch_id": "ulb:2025-09-20",
        "event_time": EVENT,
        "amount": 2125.87,
        "score": 0.97,
        "threshold": 0.42,
        "model_name": "fraud-detector",
        "model_version": 3,
        "reason": "score 0.970 >= threshold 0.420",
        "top_drivers": (AlertDriver("v14", 2.5), AlertDriver("amount", 0.75)),
        "raised_at": EVENT + timedelta(seconds=3),
    }
    return AlertRecord(**{**values, **changes})


def _decision(**changes: Any) -> DecisionRecord:
    transaction = _transaction().to_dict()
    values: dict[str, Any] = {
        "request_id": uuid.uuid4(),
        "client": "pos-gateway",
        **transaction,
        "model_name": "fraud-detector",
        "model_version": 3,
        "score": 0.97,
        "threshold": 0.42,
        "is_fraud": True,
        "reasons_method": "linear",
        "top_drivers": (AlertDriver("v14", 2.5, "v14 = -9.1"),),
        "decided_at": EVENT + timedelta(seconds=3),
    }
    return DecisionRecord(**{**values, **changes})


SAMPLES = {
    Contract.TRANSACTION: _transaction,
    Contract.PREDICTION: _prediction,
    Contract.ALERT: _alert,
    Contract.DECISION: _decision,
}


# -- in step with the .avsc ------------------------------------------------------------------
def _avro_of_hint(hint: Any) -> Any:
    """The normalised Avro type a record field's Python type stands for."""
    if hint is uuid.UUID:
        return ("string", "uuid")
    if hint is datetime:
        return ("long", "timestamp-millis")
    if typing.get_origin(hint) is tuple:
        item, ellipsis = typing.get_args(hint)
        assert ellipsis is Ellipsis
        return ("array", _avro_of_hint(item))
    if dataclasses.is_dataclass(hint):
        return ("record", hint.__name__, _record_fields(hint))
    simple = {str: "string", float: "double", bool: "boolean", int: "int"}
    return simple[hint]


def _record_fields(cls: Any) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _avro_of_hint(hints[f.name])) for f in dataclasses.fields(cls))


def _avro_of_schema(schema: Any) -> Any:
    """The same normalised form read from the .avsc (docs and namespaces dropped)."""
    if isinstance(schema, str):
        return schema
    if "logicalType" in schema:
        return (schema["type"], schema["logicalType"])
    if schema["type"] == "array":
        return ("array", _avro_of_schema(schema["items"]))
    if schema["type"] == "record":
        fields = tuple((f["name"], _avro_of_schema(f["type"])) for f in schema["fields"])
        return ("record", schema["name"], fields)
    return _avro_of_schema(schema["type"])


@pytest.mark.parametrize("contract", list(Contract), ids=lambda c: c.value)
def test_record_fields_match_the_avsc_in_name_order_and_type(contract: Contract) -> None:
    schema = json.loads(load_schema_str(contract))

    from_avsc = _avro_of_schema(schema)[2]
    from_record = _record_fields(contract.record_type)

    assert [name for name, _ in from_record] == [name for name, _ in from_avsc]
    assert from_record == from_avsc


@pytest.mark.parametrize("contract", list(Contract), ids=lambda c: c.value)
def test_every_schema_and_field_is_namespaced_and_documented(contract: Contract) -> None:
    schema = json.loads(load_schema_str(contract))

    assert schema["namespace"] == "io.fraudpipe.v1"
    assert schema["doc"]
    undocumented = [f["name"] for f in schema["fields"] if not f.get("doc")]
    assert undocumented == []


def test_transaction_carries_every_model_input_and_never_the_label() -> None:
    names = [f["name"] for f in json.loads(load_schema_str(Contract.TRANSACTION))["fields"]]

    assert set(MODEL_INPUT_COLUMNS) <= set(names)
    assert not {"label", "class", "Class"} & set(names)


# -- Avro round trip (no registry) -----------------------------------------------------------
@pytest.mark.parametrize("contract", list(Contract), ids=lambda c: c.value)
def test_record_round_trips_through_its_schema(contract: Contract) -> None:
    parsed = fastavro.parse_schema(json.loads(load_schema_str(contract)))
    record = SAMPLES[contract]()
    buffer = io.BytesIO()

    fastavro.schemaless_writer(buffer, parsed, to_dict(record))
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, parsed, parsed)

    assert contract.record_type.from_dict(decoded) == record


def test_event_time_keeps_the_instant_whatever_the_offset() -> None:
    parsed = fastavro.parse_schema(json.loads(load_schema_str(Contract.TRANSACTION)))
    plus_two = timezone(timedelta(hours=2))
    record = _transaction(event_time=EVENT.astimezone(plus_two))
    buffer = io.BytesIO()

    fastavro.schemaless_writer(buffer, parsed, record.to_dict())
    buffer.seek(0)
    decoded = TransactionRecord.from_dict(fastavro.schemaless_reader(buffer, parsed, parsed))

    assert decoded.event_time == EVENT
    assert decoded.event_time.utcoffset() == timedelta(0)


def test_alert_without_drivers_reads_as_empty_tuple() -> None:
    parsed = fastavro.parse_schema(json.loads(load_schema_str(Contract.ALERT)))
    wire = _alert(top_drivers=()).to_dict()
    del wire["top_drivers"]  # a writer that predates drivers: the schema default applies
    buffer = io.BytesIO()

    fastavro.schemaless_writer(buffer, parsed, wire)
    buffer.seek(0)

    assert AlertRecord.from_dict(fastavro.schemaless_reader(buffer, parsed)).top_drivers == ()


# -- values the contracts forbid -------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: _transaction(amount=math.nan), "amount"),
        (lambda: _transaction(amount=-0.01), "amount"),
        (lambda: _transaction(v14=math.inf), "v14"),
        (lambda: _transaction(event_time=EVENT.replace(tzinfo=None)), "event_time"),
        (lambda: _prediction(score=1.5), "score"),
        (lambda: _prediction(threshold=math.nan), "threshold"),
        (lambda: _prediction(model_version=0), "model_version"),
        (lambda: _prediction(scored_at=datetime(2025, 9, 20)), "scored_at"),
        (lambda: _alert(raised_at=datetime(2025, 9, 20)), "raised_at"),
        (lambda: _alert(top_drivers=(AlertDriver("v1", math.nan),)), "contribution"),
    ],
)
def test_records_refuse_values_the_contract_forbids(build: Any, field: str) -> None:
    with pytest.raises(ContractViolationError) as refused:
        build()

    assert refused.value.field == field
    assert field in str(refused.value)


def test_huge_but_finite_features_are_accepted() -> None:
    # Their sum overflows to inf; each value on its own is finite, so the record is valid.
    record = _transaction(v1=1e308, v2=1e308)

    assert record.v1 == 1e308


def test_from_dict_refuses_a_decoded_nan_amount() -> None:
    wire = _transaction().to_dict()

    with pytest.raises(ContractViolationError, match="amount"):
        TransactionRecord.from_dict({**wire, "amount": math.nan})


# -- loading the files -----------------------------------------------------------------------
def test_unknown_contract_name_is_refused() -> None:
    with pytest.raises(ContractFileError, match="unknown contract"):
        load_schema_str("invoice")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"type": "record", "name": ', "invalid JSON"),
        ('{"type": "record", "name": "T", "namespace": "x", "fields": [{"name": "a"}]}', "Avro"),
        ('{"type": "enum", "name": "E", "namespace": "x", "symbols": ["A"]}', "record"),
        ('{"type": "record", "name": "T", "fields": []}', "namespace"),
    ],
)
def test_unusable_avsc_files_are_refused_with_the_reason(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / "transaction.avsc").write_text(content)

    with pytest.raises(ContractFileError, match=problem):
        load_schema_str(Contract.TRANSACTION, tmp_path)


def test_missing_avsc_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractFileError, match="cannot be read"):
        load_schema_str("prediction", tmp_path)
