"""What the scoring API accepts and answers, as pydantic models (and so as its OpenAPI schema).

A request's transaction is the `Transaction` contract (`contracts/transaction.avsc`) as JSON:
the same fields, in the same order, with the same bounds the stream enforces
(`fraudpipe.data.bounds` at the configured margin, finite numbers, an amount >= 0, an event
time a timestamp in milliseconds can hold). `tests/unit/test_serving_schema.py` keeps the model
and the contract in step. The model is closed and its numbers strict: a number sent as a string, a
field the contract does not have, or a missing one is a 422 naming each bad field; strings are
bounded too, so no body can make the server hold more than the request-size limit allows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    create_model,
)

from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.data.bounds import feature_bounds

#: The latest event time a ``timestamp-millis`` holds that Python can also represent.
_LATEST: Final = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Longest ``batch_id`` and ``source`` accepted (the pipeline's own are under 60 characters).
MAX_TEXT: Final = 128

#: Closed, and numbers are numbers: a feature sent as a string is refused, not converted. (Not
#: strict as a whole: FastAPI validates the parsed JSON, where a UUID or a time is a string.)
_CLOSED = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def _in_range(value: datetime) -> datetime:
    if not _EPOCH <= value <= _LATEST:
        raise ValueError("must lie between 1970-01-01 and 9999-12-31, UTC")
    return value


EventTime = Annotated[AwareDatetime, AfterValidator(_in_range)]
Text = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TEXT)]


def transaction_model(margin: float) -> type[BaseModel]:
    """The request's transaction, with the bounds of `feature_bounds(margin)`.

    Args:
        margin: ``Settings.bounds_margin``, as the stream's decoder uses it.

    Returns:
        A pydantic model named ``Transaction``.
    """
    bounds = feature_bounds(margin)
    features: dict[str, Any] = {
        name: (Annotated[float, Strict()], Field(ge=low, le=high))
        for name, low, high in zip(FEATURE_COLUMNS, bounds.low, bounds.high, strict=True)
    }
    model: type[BaseModel] = create_model(
        "Transaction",
        __config__=_CLOSED,
        __doc__="One card transaction to score, as the `Transaction` Avro contract has it.",
        transaction_id=(UUID, Field(description="Your id of the transaction; one decision each.")),
        batch_id=(Text, Field(description="Lineage: the batch or channel it belongs to.")),
        source=(Text, Field(description="Where it came from (e.g. 'pos', 'ecom').")),
        event_time=(EventTime, Field(description="When it happened: ISO 8601 with a zone.")),
        **features,
    )
    return model


class Reason(BaseModel):
    """One input that pushed the score up."""

    model_config = ConfigDict(frozen=True)

    feature: str
    contribution: float = Field(description="Its share of the log-odds (towards fraud > 0).")
    description: str = Field(description="The same in words, for an analyst.")


class Decision(BaseModel):
    """The verdict on one transaction, and what made it."""

    model_config = ConfigDict(frozen=True)

    transaction_id: UUID
    request_id: UUID = Field(description="The request that decided it (a repeat returns its id).")
    score: float = Field(description="Fraud probability in [0, 1].")
    is_fraud: bool = Field(description="score >= threshold: decline or step up.")
    threshold: float
    model_name: str
    model_version: int
    reasons: list[Reason] = Field(description="Top inputs towards fraud, largest first.")
    reasons_method: str = Field(description="'linear', 'shap', or '' (not attributable).")
    decided_at: datetime
    replayed: bool = Field(description="True when this is an earlier decision, returned again.")


class BatchDecisions(BaseModel):
    """The verdicts on a batch, in request order."""

    request_id: UUID = Field(description="This request (a repeated transaction keeps its own).")
    decisions: list[Decision]


class Problem(BaseModel):
    """An error answer (401, 413, 503)."""

    detail: str
