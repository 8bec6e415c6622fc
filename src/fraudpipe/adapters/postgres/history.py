"""Labelled history for training, read from the ``transactions`` table.

The frame is the one `fraudpipe.retrain.ulb_history` reads from the raw file:
``MODEL_INPUT_COLUMNS`` (``event_time`` as int64 epoch ms, UTC) plus ``label`` (int64 0/1),
sorted by event time, validated by the training-frame schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import pandas as pd
import psycopg
import sqlalchemy as sa

from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError, TrainingDataError
from fraudpipe.model.schema import validate_labelled_frame

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
