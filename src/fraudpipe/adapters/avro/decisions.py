"""The scoring API's decisions on the wire: `DecisionRecord` to registry-framed Avro and back.

The API writes with the subject's latest registered version (it never registers a schema);
the recorder reads with the local contract as its reader schema: a message written with
another record's schema does not resolve to it and is refused.
"""

from __future__ import annotations

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from fraudpipe.adapters.avro.decoding import deserialize, wire_schema_id
from fraudpipe.adapters.avro.schemas import Contract
from fraudpipe.adapters.avro.serde import (
    make_deserializer,
    make_serializer,
    registry_errors,
    value_context,
)
from fraudpipe.config import Settings
from fraudpipe.errors import MalformedAvroError
from fraudpipe.records import DecisionRecord


class DecisionCodec:
    """Encodes the API's decisions and decodes them for the recorder."""

    def __init__(self, settings: Settings, client: SchemaRegistryClient) -> None:
        """Build the serializer and deserializer (no registry request is made yet)."""
        self._settings = settings
        self.topic = settings.topic_decisions
        self._context = value_context(self.topic)
        self._serializer = make_serializer(Contract.DECISION, client)
        self._deserializer = make_deserializer(Contract.DECISION, client)

    def encode(self, record: DecisionRecord) -> bytes:
        """The record as a message value, with the subject's latest schema id.

        Raises:
            ContractNotRegisteredError: The subject has no schema (`fraudpipe contracts
                register`).
            ServiceUnavailableError: The registry cannot be reached (first call only; the
                schema is cached after it).
        """
        with registry_errors(self._settings, Contract.DECISION.subject(self._settings)):
            value = self._serializer(record, self._context)
        assert value is not None
        return value

    def decode(self, message: Message) -> DecisionRecord:
        """One consumed message as a decision.

        Raises:
            PoisonMessageError: Not Avro, a schema of another subject, a corrupt body.
            ContractViolationError: Decoded, but its values break the record's rules.
            ServiceUnavailableError: The registry cannot be reached.
        """
        value = message.value()
        schema_id = wire_schema_id(value)
        record = deserialize(self._settings, self._deserializer, value, self._context, schema_id)
        if not isinstance(record, DecisionRecord):
            raise MalformedAvroError(schema_id, f"decoded to {type(record).__name__}")
        return record
