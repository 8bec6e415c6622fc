"""What `PinnedAvroSerializer` and `registry_errors` take from confluent-kafka's internals.

`serde` leans on names the library does not document: `AvroSerializer`'s parsed schema, its
strictness flags and its validation switch, the per-value `clear_original_key` hook, and the
httpx flavour the registry client was built on. An upgrade that renames or retypes any of them
must fail here, by name, rather than as a wrong byte on the wire or an outage taken for a
refusal.
"""

from __future__ import annotations

import inspect

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer

from fraudpipe.adapters.avro import Contract, load_schema_str, serde
from fraudpipe.records import to_dict

pytestmark = pytest.mark.unit


@pytest.fixture
def pinned() -> serde.PinnedAvroSerializer:
    # No request is made: the schema is given, and nothing is serialized.
    client = SchemaRegistryClient({"url": "http://127.0.0.1:9"})
    schema = Schema(load_schema_str(Contract.TRANSACTION), "AVRO")
    conf = {
        "auto.register.schemas": False,
        "use.latest.version": False,
        "subject.name.strategy.type": "TOPIC",
    }
    return serde.PinnedAvroSerializer(client, schema, to_dict, conf, planned_encoding=True)


def test_the_parsed_schema_is_fastavros_parsed_record(pinned: serde.PinnedAvroSerializer) -> None:
    parsed = pinned._parsed_schema
    assert isinstance(parsed, dict)
    assert parsed["type"] == "record"
    assert parsed["name"].endswith("Transaction")
    assert [f["name"] for f in parsed["fields"]][:2] == ["transaction_id", "batch_id"]


def test_the_strictness_flags_are_booleans(pinned: serde.PinnedAvroSerializer) -> None:
    assert isinstance(pinned._strict, bool)
    assert isinstance(pinned._strict_allow_default, bool)


def test_validation_is_a_method_answering_a_boolean(pinned: serde.PinnedAvroSerializer) -> None:
    assert inspect.ismethod(pinned._validation_enabled)
    assert pinned._validation_enabled() is False


def test_the_per_value_hook_still_exists_and_takes_no_argument() -> None:
    assert not inspect.signature(serde.clear_original_key).parameters


def test_the_registry_clients_transport_errors_are_httpx_exceptions() -> None:
    assert issubclass(serde._registry_http.TransportError, Exception)
    assert serde._registry_http.TransportError.__name__ == "TransportError"


def test_the_pinned_serializer_still_overrides_the_librarys_entry_point() -> None:
    assert "__call__" in vars(AvroSerializer)
    assert serde.PinnedAvroSerializer.__call__ is not AvroSerializer.__call__
