"""CSV and Parquet files with the ULB columns, read without losing a row.

A file whose columns are wrong, or that holds nothing, is refused whole (named errors). Anything
wrong inside a row is left for validation, except rows that cannot even be split into the
file's columns (a truncated last line, a row with extra fields): those come back as rejections.
The common case, a clean CSV, takes pandas' C parser with float64 columns; only a file that
parser refuses goes through the slower line-by-line reader.

A file is cut into batches by calendar day (UTC) of event time, exactly like the ULB source:
one file can make several batches (``file:<stem>:<day>``), and a longer export of the same file
later adds only its new rows (see `fraudpipe.ingest`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from fraudpipe.columns import (
    RAW_ID_COLUMN,
    RAW_LABEL_COLUMN,
    RAW_OPTIONAL_COLUMNS,
    RAW_REQUIRED_COLUMNS,
)
from fraudpipe.data.sources import RawRows, Rejection
from fraudpipe.errors import EmptySourceError, SourceColumnsError, SourceReadError

CSV_SUFFIXES: Final = frozenset({".csv"})
PARQUET_SUFFIXES: Final = frozenset({".parquet", ".pq"})

#: Bytes read from the end of a CSV to find its last line; far longer than any ULB row.
_TAIL_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class FileSource:
    """A CSV or Parquet file; its source name is ``file:<stem>`` (``cards.csv`` → ``file:cards``).

    Ids come from the file's integer ``id`` column when it has one, else from the row's day and
    its position in the file (`ids_per_day`), so the same file (or a longer export with the same
    stem) always yields the same ids, and two days' files of one name never share one.
    """

    path: Path

    @property
    def name(self) -> str:
        return f"file:{self.path.stem}"

    @property
    def is_synthetic(self) -> bool:
        return False

    @property
    def ids_per_day(self) -> bool:
        return True

    def read(self, days: Sequence[date] | None) -> RawRows:
        return read_rows_file(self.path, self.name)


def read_rows_file(path: Path, source: str) -> RawRows:
    """Read a CSV or Parquet file of raw rows.

    Args:
        path: The file; ``.csv``, ``.parquet`` or ``.pq``.
        source: The source's name, for messages.

    Returns:
        The rows by position, plus the rows that could not be split into columns.

    Raises:
        SourceReadError: The file is missing, of another format, or not readable as its format.
        EmptySourceError: The file holds no data rows.
        SourceColumnsError: The file's columns are not the ULB columns.
    """
    if not path.is_file():
        raise SourceReadError(source, f"{path} does not exist", "check the path")
    if path.stat().st_size == 0:
        raise EmptySourceError(source)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        rows = _read_csv(path, source)
    elif suffix in PARQUET_SUFFIXES:
        rows = _read_parquet(path, source)
    else:
        raise SourceReadError(
            source, f"unknown file type {path.suffix!r}", "use a .csv or .parquet file"
        )
    if rows.frame.empty and not rows.rejections:
        raise EmptySourceError(source)
    return rows


def check_columns(columns: Sequence[str], source: str) -> None:
    """Refuse a header that is not exactly the ULB columns (plus optional ``Class``, ``id``).

    Raises:
        SourceColumnsError: Columns are missing or unexpected (names listed in the message).
    """
    present = list(columns)
    missing = [c for c in RAW_REQUIRED_COLUMNS if c not in present]
    allowed = {*RAW_REQUIRED_COLUMNS, *RAW_OPTIONAL_COLUMNS}
    unexpected = [c for c in present if c not in allowed]
    duplicated = sorted({c for c in present if present.count(c) > 1})
    if missing or unexpected or duplicated:
        raise SourceColumnsError(source, missing, unexpected + [f"{c} (twice)" for c in duplicated])


def _column_dtypes(header: Sequence[str]) -> dict[str, str]:
    # ids stay text until validated: float64 would silently round ids above 2**53.
    return {c: ("str" if c == RAW_ID_COLUMN else "float64") for c in header}


def _read_csv(path: Path, source: str) -> RawRows:
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except pd.errors.EmptyDataError as exc:
        raise EmptySourceError(source) from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SourceReadError(source, f"header is not CSV ({exc})") from exc
    check_columns(header, source)
    try:
        frame = pd.read_csv(path, dtype=_column_dtypes(header), engine="c")
    except ValueError:
        # Text in a number column, a row with too many fields, or bytes that are not UTF-8.
        return _read_csv_line_by_line(path, header)
    rejections = []
    last = _last_line_fields(path)
    if last is not None and len(last) < len(header) and not frame.empty:
        # The C parser pads a short last line with NaN; say what really happened.
        position = len(frame) - 1
        rejections.append(
            Rejection(
                position,
                f"truncated line: {len(last)} of {len(header)} fields",
                dict(zip(header, last, strict=False)),
            )
        )
        frame = frame.iloc[:position]
    return RawRows(frame, rejections)


def _last_line_fields(path: Path) -> list[str] | None:
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - _TAIL_BYTES))
        tail = fh.read()
    lines = [line for line in tail.splitlines() if line.strip()]
    if not lines:
        return None
    text = lines[-1].decode("utf-8", errors="replace")
    return next(csv.reader([text]), None)


def _read_csv_line_by_line(path: Path, header: list[str]) -> RawRows:
    width = len(header)
    positions: list[int] = []
    good: list[list[str]] = []
    misshapen: list[tuple[int, list[str]]] = []
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        next(reader)
        position = 0
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank lines are not rows (pandas skips them too)
            if len(fields) == width:
                positions.append(position)
                good.append(fields)
            else:
                misshapen.append((position, fields))
            position += 1
    rejections = []
    for at, fields in misshapen:
        raw: dict[str, object] = dict(zip(header, fields, strict=False))
        if len(fields) > width:
            raw["extra_fields"] = fields[width:]
        truncated = at == position - 1 and len(fields) < width
        what = "truncated line" if truncated else "wrong number of fields"
        rejections.append(Rejection(at, f"{what}: {len(fields)} of {width} fields", raw))
    frame = pd.DataFrame(good, columns=header, index=pd.Index(positions, dtype="int64"), dtype=str)
    return RawRows(frame.replace("", np.nan), rejections)


def _read_parquet(path: Path, source: str) -> RawRows:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        # pyarrow raises ArrowInvalid (a ValueError) or OSError for a damaged file.
        raise SourceReadError(source, f"not a readable Parquet file ({exc})") from exc
    check_columns([str(c) for c in frame.columns], source)
    frame = frame.reset_index(drop=True)
    if RAW_ID_COLUMN in frame.columns:
        ids = frame[RAW_ID_COLUMN]
        frame[RAW_ID_COLUMN] = ids.astype("string").astype(str).where(ids.notna(), np.nan)
    if RAW_LABEL_COLUMN in frame.columns and frame[RAW_LABEL_COLUMN].dtype == bool:
        frame[RAW_LABEL_COLUMN] = frame[RAW_LABEL_COLUMN].astype("float64")
    return RawRows(frame, [])
