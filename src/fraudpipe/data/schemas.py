"""The raw-row contract (pandera) and the split of a raw frame into valid rows and rejections.

Raw rows are what a source holds, in the ULB dataset's own column names: ``Time`` (seconds from
the source's time zero), ``V1``..``V28``, ``Amount``, optionally ``Class`` (the label) and an
integer ``id``. A row breaking the contract is rejected with a readable reason per broken rule;
it never stops the other rows.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.engines import pandas_engine
from pandera.typing import Series

from fraudpipe.columns import (
    RAW_AMOUNT_COLUMN,
    RAW_ID_COLUMN,
    RAW_LABEL_COLUMN,
    RAW_V_COLUMNS,
)
from fraudpipe.data.bounds import FeatureBounds, feature_bounds
from fraudpipe.data.repeats import set_aside_repeats

#: The bounds at the default margin, for callers without settings (tests, the synthetic fit).
DEFAULT_BOUNDS: Final = feature_bounds()

MAX_TIME_SECONDS: Final = 10_000_000_000.0
"""Upper bound on ``Time`` (~317 years): keeps event times inside PostgreSQL's and numpy's range."""

_ID_PATTERN: Final = r"^\d{1,18}$"


class RawTransactionSchema(pa.DataFrameModel):
    """One row as a source holds it. ``id`` arrives as text so a huge id never loses digits."""

    Time: Series[float] = pa.Field(ge=0, le=MAX_TIME_SECONDS)
    V1: Series[float]
    V2: Series[float]
    V3: Series[float]
    V4: Series[float]
    V5: Series[float]
    V6: Series[float]
    V7: Series[float]
    V8: Series[float]
    V9: Series[float]
    V10: Series[float]
    V11: Series[float]
    V12: Series[float]
    V13: Series[float]
    V14: Series[float]
    V15: Series[float]
    V16: Series[float]
    V17: Series[float]
    V18: Series[float]
    V19: Series[float]
    V20: Series[float]
    V21: Series[float]
    V22: Series[float]
    V23: Series[float]
    V24: Series[float]
    V25: Series[float]
    V26: Series[float]
    V27: Series[float]
    V28: Series[float]
    Amount: Series[float] = pa.Field(ge=0)
    Class: Series[float] | None = pa.Field(isin=[0.0, 1.0], nullable=True)
    id: Series[str] | None = pa.Field(str_matches=_ID_PATTERN)

    class Config:
        coerce = True
        strict = True


@lru_cache(maxsize=8)
def _schemas(bounds: FeatureBounds) -> tuple[pa.DataFrameSchema, pa.DataFrameSchema]:
    """The contract with each feature's bounds, coercing and not.

    The bounds also refuse ±inf (NaN is reported by the non-null check). The typed variant has
    no coercion step, for a frame whose columns already have the contract's types (a parsed
    CSV): coercing float64 to float64 still copied every column, about a fifth of the
    validation of a ULB piece.
    """
    coercing = RawTransactionSchema.to_schema()
    for name in (RAW_AMOUNT_COLUMN, *RAW_V_COLUMNS):
        low, high = bounds.of(name)
        column = coercing.columns[name]
        # An amount's own ``ge=0`` already reports a negative one: one reason per fault.
        floor = -np.inf if name == RAW_AMOUNT_COLUMN else low
        within = pa.Check(
            functools.partial(_within, floor, high), name=f"within [{low:.6g}, {high:.6g}]"
        )
        coercing = coercing.update_column(name, checks=[*column.checks, within])
    typed = copy.deepcopy(coercing)
    typed.coerce = False
    return coercing, typed


def _within(low: float, high: float, column: pd.Series[float]) -> pd.Series[bool]:
    # One pass of numpy comparisons: Series.between builds intermediate Series per bound.
    values = column.to_numpy(dtype=np.float64)
    inside: pd.Series[bool] = pd.Series(
        (values >= low) & (values <= high), index=column.index, dtype=bool
    )
    return inside


def _schema_for(frame: pd.DataFrame, bounds: FeatureBounds) -> pa.DataFrameSchema:
    coercing, typed = _schemas(bounds)
    columns = coercing.columns
    all_typed = all(
        name in columns and columns[name].dtype.check(pandas_engine.Engine.dtype(dtype))
        for name, dtype in frame.dtypes.items()
    )
    return typed if all_typed else coercing


@dataclass(frozen=True)
class ValidatedRows:
    """A raw frame split by the contract.

    Attributes:
        valid: The rows that passed, indexed by position in the source: float64 ``Time``,
            ``V1``..``V28``, ``Amount``, ``Class`` (NaN when missing), int64 ``id`` if the source
            has one.
        reasons: Position of each rejected row → why (one entry per broken rule).
    """

    valid: pd.DataFrame
    reasons: dict[int, list[str]]


def validate_raw(frame: pd.DataFrame, bounds: FeatureBounds = DEFAULT_BOUNDS) -> ValidatedRows:
    """Check every row of a raw frame against `RawTransactionSchema` and the features' bounds,
    lazily, and ids across rows.

    Cells that are not numbers are found first (pandera's coercion step); those rows are set
    aside and the rest is validated again so every other rule still runs on every other row.

    Args:
        frame: Raw rows indexed by position; columns already checked to be the ULB columns.
            Numeric columns may be float64 or text (a file with a word in a number).
        bounds: What each feature may hold (`fraudpipe.data.bounds`).

    Returns:
        The valid rows (typed) and the reasons for each rejected row.
    """
    reasons: dict[int, list[str]] = {}
    remaining = frame
    coercing, typed = _schemas(bounds)
    for _ in range(2):
        schema = _schema_for(remaining, bounds)
        try:
            # Without coercion there is nothing to change: validating in place spares pandera
            # its copy of the frame (a third of its time on a ULB piece).
            checked = schema.validate(remaining, lazy=True, inplace=schema is typed)
        except pa.errors.SchemaErrors as exc:
            failures = exc.failure_cases
            coercion = failures["check"].astype(str).str.startswith("coerce_dtype")
            if coercion.any():
                # Other checks on a column that could not be coerced fail as a whole (no index);
                # they run again on the second pass, without the rows that are not numbers.
                failures = failures[coercion]
            _add_reasons(reasons, failures)
            remaining = remaining.drop(index=list(_positions(failures)))
            continue
        return _unique_ids(ValidatedRows(_typed(checked), reasons))
    return _unique_ids(ValidatedRows(_typed(coercing.validate(remaining)), reasons))


def _unique_ids(rows: ValidatedRows) -> ValidatedRows:
    """The one rule across rows: an id names one transaction.

    Rows repeating an id with identical values are the same transaction exported twice: the
    first loads, the copies are rejected. Rows sharing an id with different values contradict
    each other and nothing says which is right: all of them are rejected.
    """
    if RAW_ID_COLUMN not in rows.valid.columns:
        return rows
    reasons = dict(rows.reasons)
    valid = set_aside_repeats(
        rows.valid,
        reasons,
        key=[RAW_ID_COLUMN],
        agree_on=None,
        copy=lambda repeat, _: (
            f"id: {repeat.key} repeats position {repeat.positions[0]} (identical values)"
        ),
        contradiction=lambda repeat, position: (
            f"id: {repeat.key} also at position(s) {repeat.others(position)} with different values"
        ),
    )
    return ValidatedRows(valid, reasons)


def _typed(checked: pd.DataFrame) -> pd.DataFrame:
    if RAW_ID_COLUMN in checked.columns:
        checked = checked.assign(**{RAW_ID_COLUMN: checked[RAW_ID_COLUMN].astype("int64")})
    if RAW_LABEL_COLUMN not in checked.columns:
        checked = checked.assign(**{RAW_LABEL_COLUMN: np.nan})
    return checked


def _positions(failures: pd.DataFrame) -> set[int]:
    rows = failures["index"]
    if rows.isna().any():
        unplaced = failures[rows.isna()][["column", "check", "failure_case"]]
        raise ValueError(f"schema failures not tied to a row: {unplaced.to_dict('records')}")
    return {int(i) for i in rows}


def _add_reasons(reasons: dict[int, list[str]], failures: pd.DataFrame) -> None:
    for position, column, check, case in zip(
        failures["index"],
        failures["column"],
        failures["check"].astype(str),
        failures["failure_case"],
        strict=True,
    ):
        reason = describe_failure(str(column), check, case)
        bucket = reasons.setdefault(int(position), [])
        if reason not in bucket:
            bucket.append(reason)


def describe_failure(column: str, check: str, case: object) -> str:
    """A pandera failure case in words, e.g. ``"Amount: negative (-3.0)"``."""
    if check == "not_nullable":
        return f"{column}: missing"
    if check.startswith(("coerce_dtype", "dtype(")):
        return f"{column}: not a number ({case!r})"
    if check.startswith("greater_than_or_equal_to"):
        return f"{column}: negative ({case})"
    if check.startswith("less_than_or_equal_to"):
        return f"{column}: too large ({case}; at most {MAX_TIME_SECONDS:.0f})"
    if check.startswith("isin"):
        return f"{column}: not 0 or 1 ({case})"
    if check.startswith("within ["):
        return f"{column}: {case} is outside {check.removeprefix('within ')}"
    if check.startswith("str_matches"):
        return f"{column}: not a non-negative integer of at most 18 digits ({case!r})"
    return f"{column}: failed {check} ({case!r})"
