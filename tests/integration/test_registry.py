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

from fraudpipe.adapters.avro import registry_client
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
    """The writer: what `fraudpipe contracts register` uses."""
    return registry_client(stack, "writer")


@pytest.fixture
def new_topic(stack: Settings) -> Iterator[Callable[[], str]]:
    """Factory of unique topic names; their `<topic>-value` subjects are deleted afterwards."""
    topics: list[str] = []

    def make() -> str:
        topic = f"fraudpipe-test-{uuid.uuid4().hex}"
        topics.append(topic)
        return topic

    yield make
    with registry_client(stack, "admin") as admin:
        for topic in topics:
            delete_subject_completely(admin, f"{topic}-value")


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


def _status_of(call: Callable[[], object]) -> int:
    with pytest.raises(SchemaRegistryError) as refused:
        call()
    return int(refused.value.http_status_code)


def test_anonymous_and_read_only_clients_can_neither_register_nor_delete(
    stack: Settings, client: SchemaRegistryClient, new_topic: Callable[[], str]
) -> None:
    subject = f"{new_topic()}-value"
    client.register_schema(subject, avro(TXN_V1))
    anonymous = SchemaRegistryClient({"url": stack.schema_registry_url})
    wrong = SchemaRegistryClient(
        {
            "url": stack.schema_registry_url,
            "basic.auth.user.info": f"{stack.registry_writer_user}:not-the-password",
        }
    )
    reader = registry_client(stack, "reader")

    for intruder in (anonymous, wrong):
        assert _status_of(lambda c=intruder: c.get_latest_version(subject)) == 401
        assert _status_of(lambda c=intruder: c.register_schema(subject, avro(TXN_V2))) == 401
        assert _status_of(lambda c=intruder: c.delete_subject(subject)) == 401
    assert reader.get_latest_version(subject).version == 1  # it reads what it needs
    assert _status_of(lambda: reader.register_schema(subject, avro(TXN_V2))) == 403
    assert _status_of(lambda: reader.delete_subject(subject)) == 403
    assert _status_of(lambda: reader.set_compatibility(subject, "NONE")) == 403
    assert client.get_versions(subject) == [1]  # nothing changed


def test_the_writer_registers_but_cannot_change_the_registrys_global_rules(
    stack: Settings, client: SchemaRegistryClient
) -> None:
    admin = registry_client(stack, "admin")
    level = admin.get_compatibility()
    assert _status_of(lambda: client.set_compatibility(level="NONE")) == 403
    assert admin.get_compatibility() == level
