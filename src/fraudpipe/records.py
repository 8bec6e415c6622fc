"""Typed records for the four messages, mirroring `contracts/*.avsc` field for field.

The `.avsc` files are the source of truth; these classes are what the code handles, so that no
wire dict travels through the pipeline. `tests/unit/test_contract_records.py` fails when a class
and its schema drift apart (names, order, types).

`to_dict(record, ctx)` and `Record.from_dict(obj, ctx)` have the signatures `AvroSerializer` and
`AvroDeserializer` expect. A record checks, when it is built, what Avro cannot express (aware
datetimes, finite numbers, probabilities in [0, 1]); a message that breaks those rules fails to
deserialize with a `ContractViolationError`, which the consumer sends to the dead-letter topic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar
from uuid import UUID

from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.errors import ContractViolationError

if TYPE_CHECKING:
    # Only the serializers' call signature: the records themselves know no Kafka.
    from confluent_kafka.serialization import SerializationContext

WireDict = dict[str, Any]


def _require_aware(record: str, name: str, value: datetime) -> None:
    # A naive datetime would be encoded as if it were local time (fastavro's choice), shifting
    # event times by the host's UTC offset without any error.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ContractViolationError(record, name, value, "must be a timezone-aware datetime")


def _require_finite(record: str, name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ContractViolationError(record, name, value, "must be a finite number")


def _require_probability(record: str, name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise ContractViolationError(record, name, value, "must lie in [0, 1]")


def _require_version(record: str, value: int) -> None:
    if value < 1:
        raise ContractViolationError(record, "model_version", value, "must be >= 1")


class _FlatRecord:
    """`to_dict`/`from_dict` for records whose fields are all Avro scalars or logical types."""

    __slots__ = ()
    _field_names: ClassVar[tuple[str, ...]]
    _get_values: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def to_dict(self, ctx: SerializationContext | None = None) -> WireDict:
        """The record as the dict `AvroSerializer` writes (its `to_dict` hook).

        Args:
            ctx: The serialization context (unused; part of the hook's signature).

        Returns:
            Field name to value, in schema order; logical types stay Python objects
            (`UUID`, aware `datetime`), which fastavro encodes.
        """
        return dict(zip(self._field_names, type(self)._get_values(self), strict=True))

    @classmethod
    def from_dict(cls, obj: WireDict, ctx: SerializationContext | None = None) -> Self:
        """Build the record from what `AvroDeserializer` decoded (its `from_dict` hook).

        Args:
            obj: The decoded message, already resolved to this record's schema.
            ctx: The serialization context (unused; part of the hook's signature).

        Returns:
            The typed record.

        Raises:
            ContractViolationError: A value breaks the contract (e.g. NaN amount).
        """
        return cls(**obj)


R = TypeVar("R", bound=_FlatRecord)


def _wire_record(cls: type[R]) -> type[R]:
    """Cache a dataclass record's field names (schema order) and a getter for their values."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    if len(names) < 2:  # attrgetter of one name returns the value itself, not a 1-tuple
        raise TypeError(f"{cls.__name__} needs at least two fields to be a wire record")
    cls._field_names = names
    cls._get_values = attrgetter(*names)
    return cls


_get_features = attrgetter(*FEATURE_COLUMNS)


@_wire_record
@dataclass(frozen=True, slots=True)
class TransactionRecord(_FlatRecord):
    """One card transaction to score (`contracts/transaction.avsc`); never carries the label."""

    transaction_id: UUID
    batch_id: str
    source: str
    event_time: datetime
    amount: float
    v1: float
    v2: float
    v3: float
    v4: float
    v5: float
    v6: float
    v7: float
    v8: float
    v9: float
    v10: float
    v11: float
    v12: float
    v13: float
    v14: float
    v15: float
    v16: float
    v17: float
    v18: float
    v19: float
    v20: float
    v21: float
    v22: float
    v23: float
    v24: float
    v25: float
    v26: float
    v27: float
    v28: float

    def features(self) -> tuple[float, ...]:
        """``amount``, ``v1``..``v28``, in `FEATURE_COLUMNS` order."""
        values: tuple[float, ...] = _get_features(self)
        return values

    def __post_init__(self) -> None:
        _require_aware("Transaction", "event_time", self.event_time)
        values = _get_features(self)
        # One sum instead of 29 checks on the hot path: NaN and inf propagate through it, so a
        # finite sum proves every value finite (an overflow to inf only costs the slow path).
        if not math.isfinite(sum(values)):
            for name, value in zip(FEATURE_COLUMNS, values, strict=True):
                _require_finite("Transaction", name, value)
        if self.amount < 0:
            raise ContractViolationError("Transaction", "amount", self.amount, "must be >= 0")


@_wire_record
@dataclass(frozen=True, slots=True)
class PredictionRecord(_FlatRecord):
    """The scoring service's verdict on one transaction (`contracts/prediction.avsc`)."""

    transaction_id: UUID
    batch_id: str
    model_name: str
    model_version: int
    score: float
    is_fraud: bool
    threshold: float
    scored_at: datetime

    def __post_init__(self) -> None:
        _require_version("Prediction", self.model_version)
        _require_probability("Prediction", "score", self.score)
        _require_probability("Prediction", "threshold", self.threshold)
        _require_aware("Prediction", "scored_at", self.scored_at)


@_wire_record
@dataclass(frozen=True, slots=True)
class AlertDriver(_FlatRecord):
    """One input that pushed an alert's score up (`io.fraudpipe.v1.AlertDriver`)."""

    feature: str
    contribution: float
    description: str = ""

    def __post_init__(self) -> None:
        _require_finite("AlertDriver", "contribution", self.contribution)


@_wire_record
@dataclass(frozen=True, slots=True)
class AlertRecord(_FlatRecord):
    """A high-risk transaction for an analyst (`contracts/alert.avsc`)."""

    transaction_id: UUID
    batch_id: str
    event_time: datetime
    amount: float
    score: float
    threshold: float
    model_name: str
    model_version: int
    reason: str
    top_drivers: tuple[AlertDriver, ...]
    raised_at: datetime
    reasons_method: str = ""

    def __post_init__(self) -> None:
        _require_aware("Alert", "event_time", self.event_time)
        _require_finite("Alert", "amount", self.amount)
        _require_probability("Alert", "score", self.score)
        _require_probability("Alert", "threshold", self.threshold)
        _require_version("Alert", self.model_version)
        _require_aware("Alert", "raised_at", self.raised_at)

    def to_dict(self, ctx: SerializationContext | None = None) -> WireDict:
        """The alert as the dict `AvroSerializer` writes, drivers as nested dicts."""
        # Explicit super(): slots=True rebuilds the class, which breaks the zero-argument form.
        wire = super(AlertRecord, self).to_dict(ctx)
        wire["top_drivers"] = [driver.to_dict(ctx) for driver in self.top_drivers]
        return wire

    @classmethod
    def from_dict(cls, obj: WireDict, ctx: SerializationContext | None = None) -> Self:
        """Build the alert from a decoded message, drivers as `AlertDriver` records."""
        drivers = tuple(AlertDriver.from_dict(d, ctx) for d in obj.get("top_drivers", ()))
        return cls(**{**obj, "top_drivers": drivers})


@_wire_record
@dataclass(frozen=True, slots=True)
class DecisionRecord(_FlatRecord):
    """One decision of the scoring API, with the transaction it was made on
    (`contracts/decision.avsc`)."""

    request_id: UUID
    client: str
    transaction_id: UUID
    batch_id: str
    source: str
    event_time: datetime
    amount: float
    v1: float
    v2: float
    v3: float
    v4: float
    v5: float
    v6: float
    v7: float
    v8: float
    v9: float
    v10: float
    v11: float
    v12: float
    v13: float
    v14: float
    v15: float
    v16: float
    v17: float
    v18: float
    v19: float
    v20: float
    v21: float
    v22: float
    v23: float
    v24: float
    v25: float
    v26: float
    v27: float
    v28: float
    model_name: str
    model_version: int
    score: float
    threshold: float
    is_fraud: bool
    reasons_method: str
    top_drivers: tuple[AlertDriver, ...]
    decided_at: datetime

    def features(self) -> tuple[float, ...]:
        """``amount``, ``v1``..``v28``, in `FEATURE_COLUMNS` order."""
        values: tuple[float, ...] = _get_features(self)
        return values

    def __post_init__(self) -> None:
        _require_aware("Decision", "event_time", self.event_time)
        for name, value in zip(FEATURE_COLUMNS, _get_features(self), strict=True):
            _require_finite("Decision", name, value)
        _require_probability("Decision", "score", self.score)
        _require_probability("Decision", "threshold", self.threshold)
        _require_version("Decision", self.model_version)
        _require_aware("Decision", "decided_at", self.decided_at)

    def to_dict(self, ctx: SerializationContext | None = None) -> WireDict:
        """The decision as the dict `AvroSerializer` writes, drivers as nested dicts."""
        wire = super(DecisionRecord, self).to_dict(ctx)
        wire["top_drivers"] = [driver.to_dict(ctx) for driver in self.top_drivers]
        return wire

    @classmethod
    def from_dict(cls, obj: WireDict, ctx: SerializationContext | None = None) -> Self:
        """Build the decision from a decoded message, drivers as `AlertDriver` records."""
        drivers = tuple(AlertDriver.from_dict(d, ctx) for d in obj.get("top_drivers", ()))
        return cls(**{**obj, "top_drivers": drivers})


def to_dict(record: _FlatRecord, ctx: SerializationContext | None = None) -> WireDict:
    """`AvroSerializer`'s `to_dict` hook for any of the records.

    Args:
        record: A `TransactionRecord`, `PredictionRecord` or `AlertRecord`.
        ctx: The serialization context (unused; part of the hook's signature).

    Returns:
        The record as the dict fastavro encodes.
    """
    return record.to_dict(ctx)
