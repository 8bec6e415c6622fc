"""The Schema Registry (Apicurio's ccompat API) behaves the way Confluent clients expect.

Runs against the real local registry at `settings.schema_registry_url`; every subject is
unique per test and deleted (soft, then permanently) afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from fraudpipe.adapters.avro.registration import delete_subject_completely
from fraudpipe.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TXN_V1: dict[str, Any] = {
    "type": "record",
    "name": "Transaction",
    "namespace": "fraudpipe.test",
    "fields": [
        {"name": "transaction_id", "type": "string"},
        {"name": "amount", "type": "double"},
    ],
}
# Backward compatible: the new field has a default, so v2 readers can read v1 data.
TXN_V2: dict[str, Any] = {
    **TXN_V1,
    "fields": [*TXN_V1["fields"], {"name": "currency", "type": "string", "default": "EUR"}],
}
# Not backward compatible: a new field without default cannot be filled from v1 data.
TXN_V3_REQUIRED_FIELD: dict[str, Any] = {
    **TXN_V1,
    "fields": [*TXN_V2["fields"], {"name": "merchant_category", "type": "int"}],
}
# Not backward compatible: double -> string is no Avro promotion.
TXN_V3_TYPE_CHANGE: dict[str, Any] = {
    **TXN_V1,
    "fields": [
        TXN_V1["fields"][0],
        {"name": "amount", "type": "string"},
        TXN_V2["fields"][2],
    ],
}


def avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


@pytest.fixture(scope="module")
def client(stack: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": stack.schema_registry_url})


@pytest.fixture
def new_topic(client: SchemaRegistryClient) -> Iterator[Callable[[], str]]:
    """Factory of unique topic names; their `<topic>-value` subjects are deleted afterwards."""
    topics: list[str] = []

    def make() -> str:
        topic = f"fraudpipe-test-{uuid.uuid4().hex}"
        topics.append(topic)
        return topic

    yield make
    for topic in topics:
        subject = f"{topic}-value"
        delete_subject_completely(client, subject)


def test_register_and_read_back_by_id(
    client: SchemaRegistryClient, new_topic: Callable[[], str]
) -> None:
    subject = f"{new_topic()}-value"

    schema_id = client.register_schema(subject, avro(TXN_V1))

    fetched = client.get_schema(schema_id)
    assert fetched.schema_type == "AVRO"
    assert fetched.schema_str is not None
    assert json.loads(fetched.schema_str) == TXN_V1
    latest = client.get_latest_version(subject)
    assert (latest.schema_id, latest.version) == (schema_id, 1)
    # Formatting must not matter when a producer looks its schema up.
    pretty = Schema(json.dumps(TXN_V1, indent=2), "AVRO")
    assert client.lookup_schema(subject, pretty).schema_id == schema_id
    assert client.register_schema(subject, pretty) == schema_id
    assert client.get_versions(subject) == [1]


def test_same_schema_in_two_subjects_shares_one_id(
    client: SchemaRegistryClient, new_topic: Callable[[], str]
) -> None:
    # Confluent semantics: an id names a schema, not a (subject, version).
    first = client.register_schema(f"{new_topic()}-value", avro(TXN_V1))
    second = client.register_schema(f"{new_topic()}-value", avro(TXN_V1))

    assert first == second


def test_backward_compatibility_is_enforced(
    client: SchemaRegistryClient, new_topic: Callable[[], str]
) -> None:
    subject = f"{new_topic()}-value"
    v1_id = client.register_schema(subject, avro(TXN_V1))

    client.set_compatibility(subject, "BACKWARD")
    assert client.get_compatibility(subject) == "BACKWARD"

    assert client.test_compatibility(subject, avro(TXN_V2)) is True
    v2_id = client.register_schema(subject, avro(TXN_V2))
    assert v2_id != v1_id
    assert client.get_versions(subject) == [1, 2]

    for incompatible in (TXN_V3_REQUIRED_FIELD, TXN_V3_TYPE_CHANGE):
        assert client.test_compatibility(subject, avro(incompatible)) is False
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema(subject, avro(incompatible))
        assert refused.value.http_status_code == 409
    assert client.get_latest_version(subject).schema_id == v2_id


def test_avro_serde_round_trip(client: SchemaRegistryClient, new_topic: Callable[[], str]) -> None:
    topic = new_topic()
    ctx = SerializationContext(topic, MessageField.VALUE)
    schema_id = client.register_schema(f"{topic}-value", avro(TXN_V1))
    serializer = AvroSerializer(
        client,
        json.dumps(TXN_V1),
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    record = {"transaction_id": "t-1", "amount": 42.5}

    payload = serializer(record, ctx)

    assert payload is not None
    # Confluent wire format: magic byte 0, then the schema id as a big-endian int32.
    assert payload[0] == 0
    assert int.from_bytes(payload[1:5], "big") == schema_id
    assert AvroDeserializer(client)(payload, ctx) == record
    # A consumer already on v2 reads v1 data, filling the new field from its default.
    v2_reader = AvroDeserializer(client, json.dumps(TXN_V2))
    assert v2_reader(payload, ctx) == {**record, "currency": "EUR"}


def test_delete_subject_soft_then_permanent(
    client: SchemaRegistryClient, new_topic: Callable[[], str]
) -> None:
    subject = f"{new_topic()}-value"
    client.register_schema(subject, avro(TXN_V1))

    assert client.delete_subject(subject) == [1]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)

    assert client.delete_subject(subject, permanent=True) == [1]
    assert subject not in client.get_subjects(deleted=True)
