"""The message contracts: which `.avsc` file, record type, topic and subject each one has."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Final

import fastavro
from fastavro.schema import SchemaParseException, UnknownType

from fraudpipe.config import Settings
from fraudpipe.errors import ContractFileError
from fraudpipe.records import AlertRecord, DecisionRecord, PredictionRecord, TransactionRecord

#: `contracts/` at the repository root: the `.avsc` files are the source of truth, kept out of
#: the Python package so that non-Python consumers and reviewers read them where they live.
CONTRACTS_DIR: Final = Path(__file__).resolve().parents[4] / "contracts"

Record = TransactionRecord | PredictionRecord | AlertRecord | DecisionRecord


class Contract(Enum):
    """One message type on the wire; its value names `contracts/<value>.avsc`."""

    TRANSACTION = "transaction"
    PREDICTION = "prediction"
    ALERT = "alert"
    DECISION = "decision"

    @property
    def record_type(self) -> type[Record]:
        """The typed record the code builds and receives for this message."""
        return _RECORD_TYPES[self]

    def topic(self, settings: Settings) -> str:
        """The Kafka topic carrying this message (`topic_transactions`, ... in settings)."""
        topic: str = getattr(settings, _TOPIC_SETTINGS[self])
        return topic

    def subject(self, settings: Settings) -> str:
        """The registry subject of the message value: `<topic>-value` (TopicNameStrategy)."""
        return f"{self.topic(settings)}-value"

    def schema_file(self, directory: Path = CONTRACTS_DIR) -> Path:
        """Where this contract's schema lives."""
        return directory / f"{self.value}.avsc"


_RECORD_TYPES: Final[dict[Contract, type[Record]]] = {
    Contract.TRANSACTION: TransactionRecord,
    Contract.PREDICTION: PredictionRecord,
    Contract.ALERT: AlertRecord,
    Contract.DECISION: DecisionRecord,
}
_TOPIC_SETTINGS: Final[dict[Contract, str]] = {
    Contract.TRANSACTION: "topic_transactions",
    Contract.PREDICTION: "topic_predictions",
    Contract.ALERT: "topic_alerts",
    Contract.DECISION: "topic_decisions",
}


def load_schema_str(name: str | Contract, directory: Path = CONTRACTS_DIR) -> str:
    """Read one contract's Avro schema and check that it parses.

    Args:
        name: A `Contract` or its name (`"transaction"`, `"prediction"`, `"alert"`).
        directory: Where the `.avsc` files are; the repository's `contracts/` by default.

    Returns:
        The schema text as the file holds it (the registry compares schemas by canonical form,
        so formatting does not matter).

    Raises:
        ContractFileError: Unknown name, missing file, invalid JSON, or not a valid Avro
            record schema with a namespace.
    """
    try:
        contract = name if isinstance(name, Contract) else Contract(name)
    except ValueError:
        known = ", ".join(c.value for c in Contract)
        raise ContractFileError(
            directory / f"{name}.avsc", f"unknown contract (known: {known})"
        ) from None
    path = contract.schema_file(directory)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractFileError(path, f"cannot be read ({exc.strerror})") from exc
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractFileError(path, f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    try:
        fastavro.parse_schema(schema)
    except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as exc:
        raise ContractFileError(path, f"not a valid Avro schema: {exc}") from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ContractFileError(path, "the top level must be an Avro record")
    if not schema.get("namespace") and "." not in str(schema.get("name", "")):
        raise ContractFileError(path, "the record needs a namespace (e.g. io.fraudpipe.v1)")
    return text
