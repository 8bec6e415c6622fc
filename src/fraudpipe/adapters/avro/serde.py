"""Registry client, Avro serializer and deserializer for the contracts.

Built once per process and reused: each serializer caches the schema id it looked up, and the
client caches schemas by id, so after the first message no call reaches the registry.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

import structlog
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer

# The transport-error classes of whichever httpx flavour the registry client was built on; the
# client lets them through unwrapped when the registry cannot be reached at all.
from confluent_kafka.schema_registry.common._httpx_compat import httpx as _registry_http
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.serde import clear_original_key
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from fraudpipe.adapters.avro.codec.column_reader import UnsupportedSchemaError
from fraudpipe.adapters.avro.codec.record_writer import FlatRecordEncoder, plan_flat_encoder
from fraudpipe.adapters.avro.codec.row_writer import RowEncoder
from fraudpipe.adapters.avro.schemas import CONTRACTS_DIR, Contract, load_schema_str
from fraudpipe.config import Settings
from fraudpipe.errors import (
    ContractNotRegisteredError,
    SchemaRegistryRequestError,
    ServiceUnavailableError,
)
from fraudpipe.records import to_dict

#: What the serializer factories return, called as ``serializer(record, value_context(topic))``.
Serializer = Callable[[object, SerializationContext], bytes | None]

#: Bound on one registry request; the default is to wait forever.
REGISTRY_TIMEOUT_SECONDS: Final = 10.0

#: Registry error codes for "no such subject" and "no such version/schema under the subject".
SUBJECT_NOT_FOUND: Final = 40401
SCHEMA_NOT_FOUND: Final = 40403


#: Who a registry client is; each maps to one of Apicurio's roles (`fraudpipe.stack.registry`).
RegistryRole = Literal["reader", "writer", "admin"]
#: Apicurio's role of each: read only; create and change artifacts; everything.
APICURIO_ROLES: Final[dict[RegistryRole, str]] = {
    "reader": "sr-readonly",
    "writer": "sr-developer",
    "admin": "sr-admin",
}


def registry_client(settings: Settings, role: RegistryRole = "reader") -> SchemaRegistryClient:
    """A Schema Registry client for `settings.schema_registry_url` (no request is made yet).

    Args:
        settings: Where the registry is, and the credentials.
        role: ``reader`` (the publisher, the scorer: look schemas up), ``writer``
            (`fraudpipe contracts register`) or ``admin``.

    Returns:
        The client; close it (or use it as a context manager) when done.
    """
    user, password = settings.credentials("registry", role)
    return SchemaRegistryClient(
        {
            "url": settings.schema_registry_url,
            "timeout": REGISTRY_TIMEOUT_SECONDS,
            "basic.auth.user.info": f"{user}:{password.get_secret_value()}",
        }
    )


def value_context(topic: str) -> SerializationContext:
    """The context of a message value on `topic`; its subject is `<topic>-value`."""
    return SerializationContext(topic, MessageField.VALUE)


def make_serializer(
    contract: Contract,
    client: SchemaRegistryClient,
    *,
    auto_register: bool = False,
    directory: Path = CONTRACTS_DIR,
) -> AvroSerializer:
    """An `AvroSerializer` turning the contract's typed records into registry-framed Avro.

    Normal runs do not register anything: schemas come from `fraudpipe contracts register`, and
    the serializer writes with the subject's latest registered version
    (`use.latest.version`), failing if the subject does not exist. `auto_register=True` (tests,
    throwaway subjects) registers the local schema on first use instead.

    Args:
        contract: Which message the serializer writes.
        client: The registry client (see `registry_client`).
        auto_register: Register the local `.avsc` under the subject on first use.
        directory: Where the `.avsc` files are.

    Returns:
        A serializer to call as `serializer(record, value_context(topic))`.
    """
    conf = {
        "auto.register.schemas": auto_register,
        # The client refuses both at once; with auto-registration the local schema is the one.
        "use.latest.version": not auto_register,
    }
    # Annotated because the library assigns `__init__` dynamically, which mypy reads as Any.
    serializer: AvroSerializer = AvroSerializer(
        client, load_schema_str(contract, directory), to_dict, conf
    )
    return serializer


class PinnedAvroSerializer(AvroSerializer):
    """`AvroSerializer` for one registered schema version, doing per message only what must vary.

    For a serializer built from a registered schema without `use.latest.version`,
    `AvroSerializer.__call__` re-derives per message what cannot change after the first one on a
    topic: the subject, that the subject holds the schema (one registry lookup, then a set
    check), that there is no reader schema and so no rule to run, that inline validation is off,
    and the same five framing bytes (built through `BytesIO` and `struct`). Here the first value
    written to each topic takes the library's own path unchanged, and what it resolved (the
    framing) is kept; later values of that topic get `to_dict`, the Avro body and that framing.
    Nothing the library does for them is dropped: its per-message work there has a fixed result.

    The body comes from `codec.record_writer` when the schema is a flat record of scalars
    (fastavro's bytes, planned once: see that module), else from fastavro; the first value's body
    is checked against fastavro's before the planned encoder is trusted, and any value the planned
    encoder cannot write exactly as fastavro does is written by fastavro. Keys, a missing context
    and inline validation rules always take the library's path.
    """

    def __init__(
        self,
        client: SchemaRegistryClient,
        schema: Schema,
        to_dict: Callable[[Any, SerializationContext], dict[str, Any]],
        conf: dict[str, Any],
        *,
        planned_encoding: bool,
    ) -> None:
        super().__init__(client, schema, to_dict, conf)
        self._record_to_dict = to_dict
        self._body_schema: Any = self._parsed_schema
        self._planned: FlatRecordEncoder | None = (
            plan_flat_encoder(self._body_schema) if planned_encoding else None
        )
        self._framing: dict[str, bytes] = {}
        # Validation rules are checked per message by the library: leave those to it.
        self._fast = not self._validation_enabled()

    def __call__(self, obj: object, ctx: SerializationContext | None = None) -> bytes | None:
        if obj is None or ctx is None or ctx.field != MessageField.VALUE or not self._fast:
            payload: bytes | None = super().__call__(obj, ctx)
            return payload
        framing = self._framing.get(ctx.topic)
        if framing is None:
            return self._first_value(obj, ctx)
        # What the library does after every value, for rule actions that report the key.
        clear_original_key()  # type: ignore[no-untyped-call]
        datum = self._record_to_dict(obj, ctx)
        body = self._planned.encode(datum) if self._planned is not None else None
        return framing + (body if body is not None else self._fastavro_body(datum))

    def _first_value(self, obj: object, ctx: SerializationContext) -> bytes | None:
        """The library's full path (registry lookup included); keep the framing it wrote."""
        payload: bytes | None = super().__call__(obj, ctx)
        datum = self._record_to_dict(obj, ctx)
        body = self._fastavro_body(datum)
        if payload is None or len(payload) <= len(body) or not payload.endswith(body):
            # Not a plain prefix (e.g. the schema id travels in a header the library sets per
            # message): nothing to reuse, so this serializer always takes the library's path.
            self._fast = False
            return payload
        if self._planned is not None and self._planned.encode(datum) != body:
            _log().warning("contracts.planned_encoding_disabled", topic=ctx.topic)
            self._planned = None
        self._framing[ctx.topic] = payload[: len(payload) - len(body)]
        return payload

    def _fastavro_body(self, datum: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        schemaless_writer(
            buffer,
            self._body_schema,
            datum,
            strict=self._strict,
            strict_allow_default=self._strict_allow_default,
        )
        return buffer.getvalue()


def make_latest_serializer(
    contract: Contract,
    client: SchemaRegistryClient,
    subject: str,
    *,
    planned_encoding: bool = True,
) -> AvroSerializer:
    """An `AvroSerializer` pinned to the subject's latest registered version, fetched now.

    What `make_serializer` does with `use.latest.version`, minus its per-message cost. That
    serializer also writes one version for its whole life (the client caches the latest version
    without expiry), yet re-expands the schema and walks it for data-contract rules on every
    message. Built from the registered text and told to look it up, this one resolves the schema
    id once and per message does only `to_dict`, the Avro body and the framing
    (`PinnedAvroSerializer`; bench/publish.py shows what each step costs). The subject comes
    from TopicNameStrategy, the one `Contract.subject` names, rather than the library's default
    strategy, which first asks the registry for topic associations (Apicurio has none).

    A registered version that carries data-contract rules gets `make_serializer`'s serializer
    instead: only that path executes rules, and they must not be skipped.

    Use it on hot paths that write one subject.

    Args:
        contract: Which message the serializer writes (its record type feeds `to_dict`).
        client: The registry client.
        subject: The subject to write under (`contract.subject(settings)`).
        planned_encoding: Write Avro bodies with `codec.record_writer` when the schema allows
            (fastavro's bytes for well under half its CPU); False keeps fastavro for every body.

    Returns:
        A serializer to call as `serializer(record, value_context(topic))`, `topic` being the
        one `subject` belongs to.

    Raises:
        SchemaRegistryError: The subject does not exist (wrap the call in `registry_errors`).
    """
    latest = client.get_latest_version(subject)
    if _has_rules(latest.schema):
        return make_serializer(contract, client)
    conf = {
        "auto.register.schemas": False,
        "use.latest.version": False,
        "subject.name.strategy.type": "TOPIC",
    }
    return PinnedAvroSerializer(
        client, latest.schema, to_dict, conf, planned_encoding=planned_encoding
    )


def _has_rules(schema: Schema) -> bool:
    """Whether a registered schema carries any data-contract rule (domain, migration, encoding)."""
    rules = schema.rule_set
    return rules is not None and any(
        (rules.domain_rules, rules.migration_rules, rules.encoding_rules)
    )


def _log() -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger("fraudpipe.adapters.avro")  # type: ignore[no-any-return]


def registered_row_encoder(
    settings: Settings,
    contract: Contract,
    client: SchemaRegistryClient,
    *,
    directory: Path = CONTRACTS_DIR,
) -> RowEncoder:
    """A column-wise encoder (`RowEncoder`) for the local contract, framed with its registered id.

    The local `.avsc` must be registered under the contract's subject (`contracts register`):
    its id is looked up once, here, and goes into every message the encoder frames.

    Raises:
        ContractNotRegisteredError: The subject does not hold the local schema.
        ServiceUnavailableError: The registry cannot be reached.
    """
    subject = contract.subject(settings)
    text = load_schema_str(contract, directory)
    with registry_errors(settings, subject):
        found = client.lookup_schema(subject, Schema(text, "AVRO"))
    if found.schema_id is None:
        raise ContractNotRegisteredError(subject)
    return RowEncoder(parse_schema(json.loads(text)), found.schema_id)


def latest_row_encoder(client: SchemaRegistryClient, subject: str) -> RowEncoder | None:
    """A column-wise encoder for the subject's latest registered version, fetched now.

    What `make_latest_serializer` writes, for whole columns at once: same version, same
    framing. None when that version carries data-contract rules (only the library's serializer
    runs them) or has a field type `RowEncoder` does not write; use `make_latest_serializer`.

    Raises:
        SchemaRegistryError: The subject does not exist (wrap the call in `registry_errors`).
    """
    latest = client.get_latest_version(subject)
    text = latest.schema.schema_str
    if _has_rules(latest.schema) or latest.schema_id is None or text is None:
        return None
    try:
        return RowEncoder(parse_schema(json.loads(text)), latest.schema_id)
    except UnsupportedSchemaError:
        return None


def make_deserializer(
    contract: Contract, client: SchemaRegistryClient, *, directory: Path = CONTRACTS_DIR
) -> AvroDeserializer:
    """An `AvroDeserializer` returning the contract's typed record (`PinnedAvroDeserializer`).

    The writer schema comes from the registry by the id in each message; the local `.avsc` is
    the reader schema, so a message written with an older or newer compatible version still
    arrives in the shape the record type has (new fields filled from their defaults).

    Args:
        contract: Which message the deserializer reads.
        client: The registry client (see `registry_client`).
        directory: Where the `.avsc` files are.

    Returns:
        A deserializer to call as `deserializer(payload, value_context(topic))`; it raises
        `ContractViolationError` (inside the library's error) for values the record refuses.
    """
    return PinnedAvroDeserializer(
        client, load_schema_str(contract, directory), contract.record_type.from_dict
    )


class PinnedAvroDeserializer(AvroDeserializer):
    """`AvroDeserializer` without its per-message work for writer schemas that carry no rules.

    For every message the library expands the reader schema and walks it for data-contract
    tags and rules, even when the schema has none, and resolves the writer schema against the
    reader's even when they are the same. This one takes the library's whole path for the first
    message of each schema id; after that, for an id whose registered schema has no rule set,
    it reads the body with fastavro alone: with the writer schema only when it is the reader's,
    else resolving the two, as the library does. Anything but a plain framed value (no
    context, a key, headers, a short or unframed payload) goes the library's way, errors
    included.

    Measured by `bench/recorder.py` (2 cores, 2026-12-05, the stack up): 2,000 of the scoring
    API's decisions took the library 128.3 µs each and this deserializer 51.6 µs (2.5×), with
    the same records.
    """

    def __init__(
        self,
        client: SchemaRegistryClient,
        schema_str: str,
        from_dict: Callable[[dict[str, Any], SerializationContext], object],
    ) -> None:
        super().__init__(client, schema_str, from_dict)
        self._bodies: dict[int, tuple[Any, Any]] = {}
        """Schema id → (writer schema, reader schema or None when it is the writer's)."""
        self._with_rules: set[int] = set()

    def __call__(
        self, data: bytes | None, ctx: SerializationContext | None = None
    ) -> dict[str, Any] | object | None:
        if (
            data is None
            or ctx is None
            or ctx.field != MessageField.VALUE
            or ctx.headers
            or len(data) <= _FRAMING
            or data[0] != 0
        ):
            return super().__call__(data, ctx)
        schema_id = int.from_bytes(data[1:_FRAMING], "big")
        body = self._bodies.get(schema_id)
        if body is None:
            value = super().__call__(data, ctx)
            self._learn(schema_id)
            return value
        writer, reader = body
        datum: Any = schemaless_reader(io.BytesIO(data[_FRAMING:]), writer, reader, False)
        convert = self._from_dict
        return datum if convert is None else convert(datum, ctx)

    def _learn(self, schema_id: int) -> None:
        """After the library read a message of `schema_id`: may the next go the short way?"""
        if schema_id in self._with_rules:
            return
        registered = self._registry.get_schema(schema_id)
        rules = registered.rule_set
        if rules is not None and (
            rules.migration_rules or rules.domain_rules or rules.encoding_rules
        ):
            self._with_rules.add(schema_id)
            return
        writer = self._get_parsed_schema(registered)
        reader = None if writer == self._reader_schema else self._reader_schema
        self._bodies[schema_id] = (writer, reader)


#: Magic byte and schema id, before a registry-framed Avro body.
_FRAMING: Final = 5


@contextmanager
def registry_errors(settings: Settings, subject: str | None = None) -> Iterator[None]:
    """Turn the registry client's errors into fraudpipe's named errors.

    Args:
        settings: Where the registry is (for the messages).
        subject: The subject being worked on, if any: a missing subject then becomes
            `ContractNotRegisteredError`.

    Raises:
        ServiceUnavailableError: The registry cannot be reached.
        ContractNotRegisteredError: `subject` does not exist, or holds no such schema.
        SchemaRegistryRequestError: Any other refusal by the registry.
    """
    url = settings.schema_registry_url
    try:
        yield
    except _registry_http.TransportError as exc:
        raise ServiceUnavailableError("schema registry", url) from exc
    except SchemaRegistryError as exc:
        if subject is not None and exc.error_code in (SUBJECT_NOT_FOUND, SCHEMA_NOT_FOUND):
            raise ContractNotRegisteredError(subject) from exc
        raise SchemaRegistryRequestError(url, exc.http_status_code, exc.error_message) from exc
