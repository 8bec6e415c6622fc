"""Registry client, Avro serializer and deserializer for the contracts.

Built once per process and reused: each serializer caches the schema id it looked up, and the
client caches schemas by id, so after the first message no call reaches the registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer

# The transport-error classes of whichever httpx flavour the registry client was built on; the
# client lets them through unwrapped when the registry cannot be reached at all.
from confluent_kafka.schema_registry.common._httpx_compat import httpx as _registry_http
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from fraudpipe.config import Settings
from fraudpipe.contracts.records import to_dict
from fraudpipe.contracts.schemas import CONTRACTS_DIR, Contract, load_schema_str
from fraudpipe.errors import (
    ContractNotRegisteredError,
    SchemaRegistryRequestError,
    ServiceUnavailableError,
)

#: Bound on one registry request; the default is to wait forever.
REGISTRY_TIMEOUT_SECONDS: Final = 10.0

#: Registry error codes for "no such subject" and "no such version/schema under the subject".
SUBJECT_NOT_FOUND: Final = 40401
SCHEMA_NOT_FOUND: Final = 40403


def registry_client(settings: Settings) -> SchemaRegistryClient:
    """A Schema Registry client for `settings.schema_registry_url` (no request is made yet).

    Args:
        settings: Where the registry is.

    Returns:
        The client; close it (or use it as a context manager) when done.
    """
    return SchemaRegistryClient(
        {"url": settings.schema_registry_url, "timeout": REGISTRY_TIMEOUT_SECONDS}
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


def make_latest_serializer(
    contract: Contract, client: SchemaRegistryClient, subject: str
) -> AvroSerializer:
    """An `AvroSerializer` pinned to the subject's latest registered version, fetched now.

    What `make_serializer` does with `use.latest.version`, minus its per-message cost: the
    client caches the latest version without expiry, so that serializer also writes one version
    for its whole life, yet it re-walks the schema for data-contract rules on every message
    (measured 2-2.5x slower on the 33-field transaction, see bench/publish.py). Built from the
    registered text and told to look it up, this one resolves the schema id once and encodes
    straight through fastavro. Use it on hot paths that write one subject.

    Args:
        contract: Which message the serializer writes (its record type feeds `to_dict`).
        client: The registry client.
        subject: The subject to write under (`contract.subject(settings)`).

    Returns:
        A serializer to call as `serializer(record, value_context(topic))`, `topic` being the
        one `subject` belongs to.

    Raises:
        SchemaRegistryError: The subject does not exist (wrap the call in `registry_errors`).
    """
    latest = client.get_latest_version(subject)
    conf = {"auto.register.schemas": False, "use.latest.version": False}
    serializer: AvroSerializer = AvroSerializer(client, latest.schema, to_dict, conf)
    return serializer


def make_deserializer(
    contract: Contract, client: SchemaRegistryClient, *, directory: Path = CONTRACTS_DIR
) -> AvroDeserializer:
    """An `AvroDeserializer` returning the contract's typed record.

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
    deserializer: AvroDeserializer = AvroDeserializer(
        client, load_schema_str(contract, directory), contract.record_type.from_dict
    )
    return deserializer


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
