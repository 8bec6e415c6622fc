"""Which writer schemas the scorer accepts on its topic, decided once per schema id.

A message names its writer schema by id. The id must exist in the registry, be registered under
the topic's subject (`<topic>-value`), carry the Transaction record and resolve to the local
contract; anything else is a poison message. Verdicts are cached per id (ids are immutable), so
the registry is asked once per schema, not once per message; a registry that cannot be reached
is an outage, never a verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient

from fraudpipe.adapters.avro import Contract, load_schema_str, registry_errors
from fraudpipe.adapters.avro.compatibility import why_unreadable
from fraudpipe.config import Settings
from fraudpipe.errors import (
    PoisonMessageError,
    SchemaRegistryRequestError,
    UnknownSchemaError,
    WrongSchemaError,
)


@dataclass(frozen=True)
class WriterSchema:
    """An accepted writer schema: its id, text and fastavro-parsed form."""

    schema_id: int
    text: str
    parsed: Any


def _full_name(schema: dict[str, Any]) -> str:
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


class SchemaGuard:
    """Registry-backed verdicts on the writer schemas of one topic's messages."""

    def __init__(self, settings: Settings, client: SchemaRegistryClient, topic: str) -> None:
        """Prepare the guard (no request is made until the first schema id is checked).

        Args:
            settings: For the registry URL in error messages.
            client: The registry client (it caches schemas by id itself).
            topic: The topic whose subject (`<topic>-value`) the schemas must belong to.
        """
        self._settings = settings
        self._client = client
        self.subject = f"{topic}-value"
        self._contract_text = load_schema_str(Contract.TRANSACTION)
        self._contract_name = _full_name(json.loads(self._contract_text))
        self._verdicts: dict[int, WriterSchema | PoisonMessageError] = {}

    def check(self, schema_id: int) -> WriterSchema:
        """The accepted writer schema for `schema_id`.

        Raises:
            UnknownSchemaError: The registry has no schema with this id.
            WrongSchemaError: The schema is not a Transaction schema of this topic's subject.
            ServiceUnavailableError: The registry cannot be reached (an outage: retry later).
            SchemaRegistryRequestError: The registry refused the lookup for another reason.
        """
        verdict = self._verdicts.get(schema_id)
        if verdict is None:
            verdict = self._judge(schema_id)
            self._verdicts[schema_id] = verdict
        if isinstance(verdict, PoisonMessageError):
            raise verdict
        return verdict

    def _judge(self, schema_id: int) -> WriterSchema | PoisonMessageError:
        try:
            with registry_errors(self._settings):
                schema = self._client.get_schema(schema_id)
                subjects = self._client.get_subjects_by_schema_id(schema_id, deleted=True)
        except SchemaRegistryRequestError as exc:
            if exc.status == 404:
                return UnknownSchemaError(schema_id)
            raise
        if schema.schema_type not in (None, "AVRO"):
            return WrongSchemaError(schema_id, f"it is a {schema.schema_type} schema, not Avro")
        text = schema.schema_str or ""
        if self.subject not in subjects:
            registered = ", ".join(subjects) or "no subject"
            return WrongSchemaError(schema_id, f"registered under {registered}, not {self.subject}")
        writer = json.loads(text)
        name = _full_name(writer) if isinstance(writer, dict) else str(writer)
        if name != self._contract_name:
            return WrongSchemaError(schema_id, f"record {name}, not {self._contract_name}")
        problems = why_unreadable(
            self._contract_text, text, reader_label="the Transaction contract"
        )
        if problems:
            return WrongSchemaError(schema_id, "; ".join(problems))
        return WriterSchema(schema_id, text, fastavro.parse_schema(writer))
