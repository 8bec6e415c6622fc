"""Contracts against the real Schema Registry: register, check, and serde round trips.

Every test works on subjects of its own (`test.<unique>.*-value`), never the real ones, and
deletes them afterwards (soft, then permanently).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError

from fraudpipe.adapters.avro import (
    CONTRACTS_DIR,
    Contract,
    Record,
    make_deserializer,
    make_latest_serializer,
    make_serializer,
    registry_client,
    value_context,
)
from fraudpipe.adapters.avro.registration import (
    CheckStatus,
    check_contracts,
    delete_subject_completely,
    register_contracts,
)
from fraudpipe.config import Settings
from fraudpipe.errors import SchemaIncompatibleError
from fraudpipe.records import (
    AlertDriver,
    AlertRecord,
    DecisionRecord,
    PredictionRecord,
    TransactionRecord,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NOW = datetime(2025, 9, 20, 8, 30, 15, 250000, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
FRAUDPIPE = Path(sys.executable).with_name("fraudpipe")


@pytest.fixture
def own(stack: Settings, unique: str) -> Settings:
    """Settings whose four topics, hence subjects, belong to this test alone."""
    return stack.model_copy(
        update={
            "schema_compatibility": "FULL_TRANSITIVE",  # the default, whatever the env says
            "topic_transactions": f"test.{unique}.transactions",
            "topic_predictions": f"test.{unique}.predictions",
            "topic_alerts": f"test.{unique}.alerts",
            "topic_decisions": f"test.{unique}.decisions",
        }
    )


@pytest.fixture
def client(own: Settings) -> Iterator[SchemaRegistryClient]:
    with registry_client(own, "admin") as sr:
        yield sr
        for contract in Contract:
            delete_subject_completely(sr, contract.subject(own))


def _edited_contracts(tmp_path: Path, name: str, edit: Any) -> Path:
    """A copy of contracts/ in which `edit(schema_dict)` changed one file."""
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    path = folder / f"{name}.avsc"
    schema = json.loads(path.read_text())
    edit(schema)
    path.write_text(json.dumps(schema, indent=2))
    return folder


def _add_field(field: dict[str, Any]) -> Any:
    def edit(schema: dict[str, Any]) -> None:
        schema["fields"].append({"doc": "added by a test", **field})

    return edit


def _retype(name: str, avro_type: str) -> Any:
    def edit(schema: dict[str, Any]) -> None:
        next(f for f in schema["fields"] if f["name"] == name)["type"] = avro_type

    return edit


# -- register --------------------------------------------------------------------------------
def test_register_is_idempotent(client: SchemaRegistryClient, own: Settings) -> None:
    first = register_contracts(client, own)
    second = register_contracts(client, own)

    assert [r.subject for r in first] == [c.subject(own) for c in Contract]
    assert all(r.registered and r.compatibility_changed for r in first)
    assert not any(r.registered or r.compatibility_changed for r in second)
    assert [(r.schema_id, r.version) for r in second] == [(r.schema_id, r.version) for r in first]
    for contract in Contract:
        assert client.get_versions(contract.subject(own)) == [1]
        assert client.get_compatibility(contract.subject(own)) == own.schema_compatibility


def test_register_resets_a_drifted_compatibility_level(
    client: SchemaRegistryClient, own: Settings
) -> None:
    register_contracts(client, own)
    subject = Contract.PREDICTION.subject(own)
    client.set_compatibility(subject, "NONE")

    [drifted] = [r for r in check_contracts(client, own) if r.subject == subject]
    [fixed] = [r for r in register_contracts(client, own) if r.subject == subject]

    assert not drifted.ok
    assert "NONE" in drifted.problems[0]
    assert fixed.compatibility_changed and not fixed.registered
    assert client.get_compatibility(subject) == own.schema_compatibility


# -- check -----------------------------------------------------------------------------------
def test_check_before_and_after_register(client: SchemaRegistryClient, own: Settings) -> None:
    before = check_contracts(client, own)
    register_contracts(client, own)
    after = check_contracts(client, own)

    assert {r.status for r in before} == {CheckStatus.NEW_SUBJECT}
    assert {r.status for r in after} == {CheckStatus.UNCHANGED}
    assert all(r.ok for r in before + after)
    assert {r.latest_version for r in after} == {1}


def test_check_accepts_a_new_field_with_default(
    client: SchemaRegistryClient, own: Settings, tmp_path: Path
) -> None:
    register_contracts(client, own)
    folder = _edited_contracts(
        tmp_path,
        "transaction",
        _add_field({"name": "channel", "type": ["null", "string"], "default": None}),
    )

    results = {r.contract: r for r in check_contracts(client, own, directory=folder)}
    [registration] = register_contracts(client, own, [Contract.TRANSACTION], directory=folder)

    assert results[Contract.TRANSACTION].status is CheckStatus.COMPATIBLE_CHANGE
    assert results[Contract.TRANSACTION].ok
    assert results[Contract.PREDICTION].status is CheckStatus.UNCHANGED
    assert registration.registered and registration.version == 2
    [recheck] = check_contracts(client, own, [Contract.TRANSACTION], directory=folder)
    assert recheck.status is CheckStatus.UNCHANGED


def _alert_before_reasons(schema: dict[str, Any]) -> None:
    """The alert contract as it was before reasons were worded and their method named."""
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "reasons_method"]
    drivers = next(f for f in schema["fields"] if f["name"] == "top_drivers")
    item = drivers["type"]["items"]
    item["fields"] = [f for f in item["fields"] if f["name"] != "description"]


def test_the_worded_reasons_are_a_full_transitive_change_of_the_alert_contract(
    client: SchemaRegistryClient, own: Settings, tmp_path: Path
) -> None:
    before = _edited_contracts(tmp_path, "alert", _alert_before_reasons)
    register_contracts(client, own, [Contract.ALERT], directory=before)

    [result] = check_contracts(client, own, [Contract.ALERT])
    [registration] = register_contracts(client, own, [Contract.ALERT])

    assert result.status is CheckStatus.COMPATIBLE_CHANGE, result
    assert registration.registered and registration.version == 2


def _drop(name: str) -> Any:
    def edit(schema: dict[str, Any]) -> None:
        schema["fields"] = [f for f in schema["fields"] if f["name"] != name]

    return edit


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            _add_field({"name": "merchant_category", "type": "int"}),
            ["merchant_category", "default"],
        ),
        (_retype("amount", "string"), ["amount", "double", "string"]),
        # Consumers still on version 1 need the field: refused in the FULL direction only.
        (_drop("source"), ["'source'", "readers on registered version 1"]),
    ],
    ids=["required-field", "type-change", "removed-field"],
)
def test_check_refuses_an_incompatible_change_with_reasons(
    client: SchemaRegistryClient, own: Settings, tmp_path: Path, edit: Any, words: list[str]
) -> None:
    register_contracts(client, own)
    folder = _edited_contracts(tmp_path, "transaction", edit)

    [result] = check_contracts(client, own, [Contract.TRANSACTION], directory=folder)

    assert result.status is CheckStatus.INCOMPATIBLE
    assert not result.ok
    assert all(word in " ".join(result.problems) for word in words), result.problems
    with pytest.raises(SchemaIncompatibleError, match=Contract.TRANSACTION.subject(own)):
        register_contracts(client, own, [Contract.TRANSACTION], directory=folder)
    assert client.get_versions(Contract.TRANSACTION.subject(own)) == [1]


def test_check_cli_exits_1_and_explains(
    client: SchemaRegistryClient, own: Settings, tmp_path: Path
) -> None:
    register_contracts(client, own)
    folder = _edited_contracts(tmp_path, "prediction", _retype("model_version", "string"))
    # A separate process, as an operator or CI runs it; the env points it at this test's subjects.
    env = {
        **os.environ,
        **{
            f"FRAUDPIPE_{name.upper()}": getattr(own, name)
            for name in (
                "topic_transactions",
                "topic_predictions",
                "topic_alerts",
                "topic_decisions",
            )
        },
    }

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FRAUDPIPE), "contracts", "check", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    compatible = check()
    refused = check("--dir", str(folder))

    assert compatible.returncode == 0, compatible.stderr
    assert compatible.stdout.count("unchanged") == len(Contract)
    assert refused.returncode == 1
    assert f"{Contract.PREDICTION.subject(own)} incompatible" in refused.stdout
    assert "'model_version' is int in registered version 1 but string" in refused.stdout
    assert "not registrable" in refused.stderr


# -- serializer / deserializer through the registry ------------------------------------------
def _samples() -> dict[Contract, Record]:
    tid = uuid.uuid4()
    return {
        Contract.TRANSACTION: TransactionRecord(
            tid, "ulb:2025-09-20", "ulb", NOW, 12.34, *[i / 10 for i in range(1, 29)]
        ),
        Contract.PREDICTION: PredictionRecord(
            tid, "ulb:2025-09-20", "fraud-detector", 2, 0.87, True, 0.5, NOW
        ),
        Contract.ALERT: AlertRecord(
            tid,
            "ulb:2025-09-20",
            NOW,
            12.34,
            0.87,
            0.5,
            "fraud-detector",
            2,
            "score 0.870 >= threshold 0.500",
            (AlertDriver("v14", 1.9),),
            NOW,
        ),
        Contract.DECISION: DecisionRecord(
            uuid.uuid4(),
            "pos-gateway",
            tid,
            "pos:2026-12-05",
            "pos",
            NOW,
            12.34,
            *[i / 10 for i in range(1, 29)],
            "fraud-detector",
            2,
            0.87,
            0.5,
            True,
            "linear",
            (AlertDriver("v14", 1.9, "v14 = -9.1"),),
            NOW,
        ),
    }


@pytest.mark.parametrize("contract", list(Contract), ids=lambda c: c.value)
def test_record_round_trips_through_the_registry(
    client: SchemaRegistryClient, own: Settings, contract: Contract
) -> None:
    [registration] = register_contracts(client, own, [contract])
    record = _samples()[contract]
    ctx = value_context(contract.topic(own))

    payload = make_serializer(contract, client)(record, ctx)

    assert payload is not None
    assert payload[0] == 0  # Confluent framing: magic byte, then the schema id
    assert int.from_bytes(payload[1:5], "big") == registration.schema_id
    assert make_deserializer(contract, client)(payload, ctx) == record


def test_serializer_refuses_an_unregistered_subject(
    client: SchemaRegistryClient, own: Settings
) -> None:
    ctx = value_context(Contract.TRANSACTION.topic(own))

    with pytest.raises(SchemaRegistryError) as refused:
        make_serializer(Contract.TRANSACTION, client)(_samples()[Contract.TRANSACTION], ctx)

    assert refused.value.http_status_code == 404


@pytest.mark.parametrize("factory", ["make_serializer", "make_latest_serializer"])
def test_newer_registered_version_is_written_and_read_back_into_the_record(
    client: SchemaRegistryClient, own: Settings, tmp_path: Path, factory: str
) -> None:
    subject = Contract.TRANSACTION.subject(own)
    register_contracts(client, own, [Contract.TRANSACTION])
    folder = _edited_contracts(
        tmp_path, "transaction", _add_field({"name": "channel", "type": "string", "default": "pos"})
    )
    [v2] = register_contracts(client, own, [Contract.TRANSACTION], directory=folder)
    record = _samples()[Contract.TRANSACTION]
    ctx = value_context(Contract.TRANSACTION.topic(own))
    serializer = (
        make_serializer(Contract.TRANSACTION, client)
        if factory == "make_serializer"
        else make_latest_serializer(Contract.TRANSACTION, client, subject)
    )

    # The producer's code still knows v1 only: both write v2, the new field's default filled in.
    payload = serializer(record, ctx)

    assert payload is not None
    assert int.from_bytes(payload[1:5], "big") == v2.schema_id
    assert make_deserializer(Contract.TRANSACTION, client)(payload, ctx) == record
    reader_v2 = AvroDeserializer(client, (folder / "transaction.avsc").read_text())
    assert reader_v2(payload, ctx)["channel"] == "pos"


def test_latest_serializer_refuses_an_unregistered_subject(
    client: SchemaRegistryClient, own: Settings
) -> None:
    with pytest.raises(SchemaRegistryError) as refused:
        make_latest_serializer(Contract.TRANSACTION, client, Contract.TRANSACTION.subject(own))

    assert refused.value.http_status_code == 404
