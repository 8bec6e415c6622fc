"""Where labelled history comes from: the ``transactions`` table, or the raw ULB file.

Both return the same frame: ``MODEL_INPUT_COLUMNS`` (``event_time`` as int64 epoch ms, UTC) plus
``label`` (int64 0/1), sorted by event time, validated by the training-frame schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa

from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError, TrainingDataError
from fraudpipe.model.features import LABEL_COLUMN, MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.model.schema import validate_labelled_frame

ULB_TIME_ZERO: Final = datetime(2025, 9, 20, tzinfo=UTC)
"""ULB ``Time`` counts seconds from this instant (the project's convention for the dataset)."""

# Only a fixed column list is interpolated into the SQL below, never a value.
_V_SELECT = ", ".join(V_COLUMNS)

# Epoch milliseconds are computed in SQL: extract(epoch ...) is exact numeric in PostgreSQL 14+,
# so no client-side timezone conversion can shift a row across a day boundary.
LABELLED_HISTORY_SQL: Final = sa.text(
    f"""
    SELECT (extract(epoch FROM event_time) * 1000)::bigint AS event_time,
           amount, {_V_SELECT}, label
    FROM transactions
    WHERE label IS NOT NULL
      AND (CAST(:since AS timestamptz) IS NULL OR event_time >= CAST(:since AS timestamptz))
    ORDER BY event_time, transaction_id
    """
)

_DTYPES: Final = {"event_time": "int64", "amount": "float64", LABEL_COLUMN: "int64"} | {
    c: "float64" for c in V_COLUMNS
}


def load_labelled_history(engine: sa.Engine, since: datetime | None = None) -> pd.DataFrame:
    """Every labelled transaction (optionally from ``since`` on) as a training frame.

    Args:
        engine: An engine for the fraudpipe database; the app role (SELECT on ``transactions``)
            is enough.
        since: Only rows with ``event_time >= since`` (timezone-aware); ``None`` for all history.

    Returns:
        The labelled frame, oldest first.

    Raises:
        TrainingDataError: No labelled rows, or rows the training schema refuses.
    """
    with engine.connect() as conn:
        frame = pd.read_sql(LABELLED_HISTORY_SQL, conn, params={"since": since})
    if frame.empty:
        window = f" since {since.isoformat()}" if since else ""
        raise TrainingDataError(f"no labelled transactions{window} in the database")
    return validate_labelled_frame(frame.astype(_DTYPES)[[*MODEL_INPUT_COLUMNS, LABEL_COLUMN]])


def read_labelled_history(settings: Settings, since: datetime | None = None) -> pd.DataFrame:
    """``load_labelled_history`` from the fraudpipe database, connecting as the app role.

    Raises:
        ServiceUnavailableError: PostgreSQL is not reachable (or refuses the app role).
        TrainingDataError: No labelled rows, or rows the training schema refuses.
    """
    engine = sa.create_engine(settings.app_db_url, pool_pre_ping=True)
    try:
        return load_labelled_history(engine, since)
    except sa.exc.OperationalError as exc:
        url = f"postgresql://{settings.pg_host}:{settings.pg_port}/{settings.pg_database}"
        raise ServiceUnavailableError("PostgreSQL", url) from exc
    except sa.exc.ProgrammingError as exc:
        if isinstance(exc.orig, psycopg.errors.UndefinedTable):
            raise TrainingDataError(
                f"database {settings.pg_database} has no transactions table",
                hint="run the migrations, then ingest labelled days",
            ) from exc
        raise
    finally:
        engine.dispose()


def history_from_ulb_csv(path: Path) -> pd.DataFrame:
    """The ULB ``creditcard.csv`` as a labelled frame, without going through the database.

    For benchmarks and tests that must not depend on ingestion; production training reads the
    database. Event time is ``ULB_TIME_ZERO + Time`` seconds; ``Class`` becomes ``label``.

    Raises:
        TrainingDataError: The file is missing or lacks the ULB columns.
    """
    if not path.is_file():
        raise TrainingDataError(
            f"ULB file not found at {path}", hint="download it (see README: data) or pass --csv"
        )
    raw = pd.read_csv(path)
    expected = {"Time", "Amount", "Class", *(c.upper() for c in V_COLUMNS)}
    missing = sorted(expected - set(raw.columns))
    if missing:
        raise TrainingDataError(f"{path} lacks ULB columns {missing}", hint="is it creditcard.csv?")
    zero_ms = int(ULB_TIME_ZERO.timestamp() * 1000)
    # Time has whole seconds in the file; rint guards against a float like 406.99999.
    offset_ms = np.rint(raw["Time"].to_numpy(dtype=np.float64) * 1000).astype(np.int64)
    frame = pd.DataFrame(
        {
            "event_time": zero_ms + offset_ms,
            "amount": raw["Amount"].astype("float64"),
            **{c: raw[c.upper()].astype("float64") for c in V_COLUMNS},
            LABEL_COLUMN: raw["Class"].astype("int64"),
        }
    )
    return validate_labelled_frame(frame.sort_values("event_time", kind="stable"))
