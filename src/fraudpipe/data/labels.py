"""Label files: what a chargeback feed or a review team sends, checked row by row.

A label file is CSV or Parquet with one label per row:

- ``transaction_id``: the transaction's UUID, as fraudpipe gave it;
- ``label``: ``fraud`` or ``legitimate`` (also ``1``/``0``, ``true``/``false``);
- ``source``: ``chargeback``, ``analyst`` or ``dataset``;
- ``labelled_by``: who says so (a feed's name, an analyst), 1-200 printable characters;
- ``known_at``: when the label became known, ISO 8601 with its UTC offset (a time without one
  is ambiguous and refused), not in the future;
- ``note`` (optional): up to 2,000 characters.

Every cell is read as text and checked by `LabelFileSchema` (pandera), lazily, so each bad row
is reported with every rule it breaks and the good rows still go in. Two rows for the same
transaction, source and moment are one label sent twice when they agree (the copies are set
aside) and a contradiction when they do not (all of them are set aside).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from fraudpipe.data.repeats import set_aside_repeats
from fraudpipe.errors import LabelFileError

#: Columns a label file must have, and the one it may have.
LABEL_FILE_COLUMNS: Final = ("transaction_id", "label", "source", "labelled_by", "known_at")
OPTIONAL_COLUMNS: Final = ("note",)
#: Where a label may come from (the table's check constraint says the same).
LABEL_SOURCES: Final = ("dataset", "chargeback", "analyst")
#: A file larger than this is refused before it is parsed (a label row is ~150 bytes).
MAX_LABEL_FILE_BYTES: Final = 256 * 1024 * 1024
#: How far ahead of this machine's clock a sender's clock may be.
CLOCK_SKEW: Final = timedelta(minutes=5)

_FRAUD: Final = frozenset({"fraud", "1", "true"})
_LEGITIMATE: Final = frozenset({"legitimate", "0", "false"})
_UUID: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_PRINTABLE: Final = r"^[^\x00-\x1f\x7f]{1,200}$"
_KEY: Final = ["transaction_id", "source", "known_at"]


class LabelFileSchema(pa.DataFrameModel):
    """One row of a label file, every cell as text."""

    transaction_id: Series[str] = pa.Field(str_matches=_UUID)
    label: Series[str] = pa.Field(isin=sorted(_FRAUD | _LEGITIMATE))
    source: Series[str] = pa.Field(isin=list(LABEL_SOURCES))
    labelled_by: Series[str] = pa.Field(str_matches=_PRINTABLE)
    known_at: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 64})
    note: Series[str] | None = pa.Field(str_length={"max_value": 2000}, nullable=True)

    class Config:
        strict = True


@dataclass(frozen=True)
class LabelRows:
    """The valid rows of a label file, typed, indexed by position in the file.

    Attributes:
        frame: ``transaction_id`` (lower-case UUID text), ``is_fraud`` (bool), ``source``,
            ``labelled_by``, ``known_at`` (UTC timestamps), ``note`` (text or None).
        reasons: Position of each set-aside row → why (one entry per broken rule).
        raw: The file as read (every cell text), for the set-aside rows' record.
    """

    frame: pd.DataFrame
    reasons: dict[int, list[str]]
    raw: pd.DataFrame


def read_label_file(path: Path) -> pd.DataFrame:
    """The file's cells as text, indexed by position.

    Raises:
        LabelFileError: The file is missing, too large, not CSV or Parquet, or its columns are
            not the label columns.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LabelFileError(str(path), f"cannot be read ({exc.strerror})") from exc
    if size > MAX_LABEL_FILE_BYTES:
        raise LabelFileError(str(path), f"{size:,} bytes, over {MAX_LABEL_FILE_BYTES:,}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise LabelFileError(str(path), f"unknown format {suffix or '(no suffix)'}")
    except (ValueError, OSError) as exc:
        raise LabelFileError(str(path), f"not readable as {suffix[1:]} ({exc})") from exc
    missing = [c for c in LABEL_FILE_COLUMNS if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in (*LABEL_FILE_COLUMNS, *OPTIONAL_COLUMNS)]
    if missing or unexpected:
        problem = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(map(str, unexpected))}" if unexpected else "",
            )
            if part
        )
        raise LabelFileError(str(path), problem)
    text = frame.astype(object).where(frame.notna(), None)
    for column in text.columns:
        if column != "note":
            text[column] = text[column].map(lambda v: "" if v is None else str(v))
    if "note" in text.columns:
        text["note"] = text["note"].map(lambda v: None if v in (None, "") else str(v))
    return text.reset_index(drop=True)


def validate_labels(raw: pd.DataFrame, now: datetime | None = None) -> LabelRows:
    """Check every row (`LabelFileSchema`, the time rules, agreement within the file).

    Args:
        raw: `read_label_file`'s frame.
        now: The clock `known_at` may not be ahead of (default: this machine's, UTC).
    """
    now = now or datetime.now(UTC)
    reasons: dict[int, list[str]] = {}
    cleaned = raw.copy()
    for column in ("label", "source"):
        cleaned[column] = cleaned[column].str.strip().str.lower()
    try:
        LabelFileSchema.validate(cleaned, lazy=True)
    except pa.errors.SchemaErrors as exc:
        for case in exc.failure_cases.itertuples(index=False):
            if case.index is None or pd.isna(case.index):
                continue
            value = "" if case.failure_case is None else str(case.failure_case)[:80]
            reasons.setdefault(int(case.index), []).append(
                f"{case.column}: {value!r} fails {case.check}"
            )
    known_at = pd.to_datetime(cleaned["known_at"], errors="coerce", utc=True, format="ISO8601")
    naive = ~cleaned["known_at"].str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    for position in np.flatnonzero(known_at.isna().to_numpy() | naive.to_numpy()).tolist():
        reasons.setdefault(position, []).append(
            f"known_at: {str(cleaned['known_at'].iat[position])[:64]!r} is not an ISO 8601 time "
            "with its UTC offset"
        )
    ahead = known_at > pd.Timestamp(now + CLOCK_SKEW)
    for position in np.flatnonzero(ahead.fillna(False).to_numpy()).tolist():
        reasons.setdefault(position, []).append(
            f"known_at: {cleaned['known_at'].iat[position]} is in the future"
        )
    notes = cleaned["note"] if "note" in cleaned.columns else pd.Series(None, index=cleaned.index)
    frame = pd.DataFrame(
        {
            "transaction_id": cleaned["transaction_id"].str.lower(),
            "is_fraud": cleaned["label"].isin(_FRAUD),
            "source": cleaned["source"],
            "labelled_by": cleaned["labelled_by"],
            "known_at": known_at,
            "note": notes.astype(object).where(notes.notna(), None),
        },
        index=cleaned.index,
    )
    frame = frame.drop(index=list(reasons))
    frame = _agreeing(frame, reasons)
    return LabelRows(frame, reasons, raw)


def _agreeing(frame: pd.DataFrame, reasons: dict[int, list[str]]) -> pd.DataFrame:
    """Rows for one (transaction, source, moment): copies set aside, contradictions all."""
    return set_aside_repeats(
        frame,
        reasons,
        key=_KEY,
        agree_on=["is_fraud"],
        copy=lambda repeat, _: f"the same label as position {repeat.positions[0]} (sent twice)",
        contradiction=lambda repeat, _: (
            "contradicts another label for the same transaction, source and time "
            f"(positions {', '.join(map(str, repeat.positions))})"
        ),
    )
