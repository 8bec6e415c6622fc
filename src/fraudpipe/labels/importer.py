"""Import a label file: check it, set the bad rows aside with why, add the rest, once.

One PostgreSQL transaction per file: the labels and the quarantined rows go in together or not
at all, and a re-run adds nothing (both writes skip what is already there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.adapters.postgres.labels import add_labels, unknown_transactions
from fraudpipe.adapters.postgres.quarantine import quarantine_rows
from fraudpipe.config import Settings
from fraudpipe.data.days import QuarantineRecord
from fraudpipe.data.labels import LabelRows, read_label_file, validate_labels

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LabelImport:
    """What an import did.

    Attributes:
        path: The file.
        rows: Data rows in the file.
        added: Labels added now.
        already_known: Valid labels that were already there (an earlier import).
        quarantined: Rows set aside, each with its reasons (in `quarantine`).
    """

    path: Path
    rows: int
    added: int
    already_known: int
    quarantined: int


def import_labels(settings: Settings, path: Path, now: datetime | None = None) -> LabelImport:
    """Check `path` row by row and add its valid labels for transactions fraudpipe holds.

    Raises:
        LabelFileError: The file cannot be taken at all (nothing is imported).
        ServiceUnavailableError: PostgreSQL cannot be reached (nothing is imported).
    """
    rows = validate_labels(read_label_file(path), now)
    frame = rows.frame
    with connect(settings) as conn, conn.transaction():
        unknown = unknown_transactions(conn, frame["transaction_id"].unique().tolist())
        strangers = frame["transaction_id"].isin(unknown)
        strange = frame.loc[strangers, "transaction_id"]
        for position, tx_id in zip(strange.index.tolist(), strange.tolist(), strict=True):
            rows.reasons.setdefault(position, []).append(
                f"transaction_id: {tx_id} is no transaction fraudpipe holds"
            )
        known = frame[~strangers]
        added = add_labels(conn, known)
        quarantine_rows(conn, _quarantine_records(path, rows))
    result = LabelImport(
        path=path,
        rows=len(rows.raw),
        added=added,
        already_known=len(known) - added,
        quarantined=len(rows.reasons),
    )
    log.info(
        "labels imported",
        path=str(path),
        rows=result.rows,
        added=result.added,
        already_known=result.already_known,
        quarantined=result.quarantined,
    )
    return result


def _quarantine_records(path: Path, rows: LabelRows) -> list[QuarantineRecord]:
    raw = rows.raw
    return [
        QuarantineRecord(
            batch_id=None,
            source=f"labels:{path.name}",
            source_row=position,
            reason="; ".join(reasons),
            raw={str(k): v for k, v in raw.loc[position].to_dict().items()},
        )
        for position, reasons in sorted(rows.reasons.items())
    ]
