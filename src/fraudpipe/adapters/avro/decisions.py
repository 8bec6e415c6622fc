"""The scoring API's decisions on the wire: `DecisionRecord` to registry-framed Avro and back.

The API writes with the subject's latest registered version, looked up at the first decision
and pinned (`make_latest_serializer`: a fifth of the library's per-message cost); it never
registers a schema.
the recorder reads with the local contract as its reader schema: a message written with
another record's schema does not resolve to it and is refused.
"""

from __future__ import annotations

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer

from fraudpipe.adapters.avro.decoding import deserialize, wire_schema_id
from fraudpipe.adapters.avro.schemas import Contract
from fraudpipe.adapters.avro.serde import (
    make_deserializer,
    make_latest_serializer,
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
        self._client = client
        self._serializer: AvroSerializer | None = None
        self._deserializer = make_deserializer(Contract.DECISION, client)

    def encode(self, record: DecisionRecord) -> bytes:
        """The record as a message value, with the subject's latest schema id.

        Raises:
            ContractNotRegisteredError: The subject has no schema (`fraudpipe contracts
                register`).
            ServiceUnavailableError: The registry cannot be reached (first call only; the
                schema is cached after it).
        """
        subject = Contract.DECISION.subject(self._settings)
        with registry_errors(self._settings, subject):
            if self._serializer is None:
                self._serializer = make_latest_serializer(Contract.DECISION, self._client, subject)
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
        return self.decode_value(message.value())

    def decode_value(self, value: bytes | None) -> DecisionRecord:
        """A message value as a decision (see `decode`)."""
        schema_id = wire_schema_id(value)
        record = deserialize(self._settings, self._deserializer, value, self._context, schema_id)
        if not isinstance(record, DecisionRecord):
            raise MalformedAvroError(schema_id, f"decoded to {type(record).__name__}")
        return record
