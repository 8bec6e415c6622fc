"""Labelled history for training, read from the ``transactions`` and ``labels`` tables.

The frame is the one `fraudpipe.retrain.ulb_history` reads from the raw file:
``MODEL_INPUT_COLUMNS`` (``event_time`` as int64 epoch ms, UTC) plus ``label`` (int64 0/1),
sorted by event time, validated by the training-frame schema.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import pandas as pd
import psycopg
import sqlalchemy as sa

from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError, TrainingDataError
from fraudpipe.model.point_in_time import LabelCut
from fraudpipe.model.schema import validate_labelled_frame

# Only a fixed column list is interpolated into the SQL below, never a value.
_V_SELECT = ", ".join(V_COLUMNS)

# Epoch milliseconds are computed in SQL: extract(epoch ...) is exact numeric in PostgreSQL 14+,
# so no client-side timezone conversion can shift a row across a day boundary. The rule is
# `fraudpipe.model.point_in_time`'s: rows mature at the cut, each with its latest label known then.
LABELLED_HISTORY_SQL: Final = sa.text(
    f"""
    WITH known AS (
        SELECT DISTINCT ON (transaction_id) transaction_id, is_fraud, known_at
        FROM labels
        WHERE known_at <= CAST(:cut AS timestamptz)
        ORDER BY transaction_id, known_at DESC, recorded_at DESC
    )
    SELECT (extract(epoch FROM t.event_time) * 1000)::bigint AS event_time,
           t.amount, {_V_SELECT},
           CASE WHEN k.known_at IS NOT NULL
                     AND (t.label IS NULL
                          OR k.known_at >= t.event_time + make_interval(secs => :delay_seconds))
                THEN k.is_fraud::int
                ELSE t.label
           END AS label
    FROM transactions t
    LEFT JOIN known k ON k.transaction_id = t.transaction_id
    WHERE t.event_time < CAST(:mature_before AS timestamptz)
      AND (t.label IS NOT NULL OR k.transaction_id IS NOT NULL)
    ORDER BY t.event_time, t.transaction_id
    """
)

_DTYPES: Final = {"event_time": "int64", "amount": "float64", LABEL_COLUMN: "int64"} | {
    c: "float64" for c in V_COLUMNS
}


def load_labelled_history(engine: sa.Engine, cut: LabelCut | None = None) -> pd.DataFrame:
    """The labelled transactions known at ``cut``, as a training frame.

    Args:
        engine: An engine for the fraudpipe database; the app role (SELECT on ``transactions``
            and ``labels``) is enough.
        cut: What the frame may know (`LabelCut`); ``None`` for every row and label stored now.

    Returns:
        The labelled frame, oldest first.

    Raises:
        TrainingDataError: No labelled rows, or rows the training schema refuses.
    """
    cut = cut or LabelCut.now(timedelta(0))
    params: dict[str, datetime | float] = {
        "cut": cut.cut,
        "mature_before": cut.mature_before,
        "delay_seconds": cut.label_delay.total_seconds(),
    }
    with engine.connect() as conn:
        frame = pd.read_sql(LABELLED_HISTORY_SQL, conn, params=params)
    if frame.empty:
        raise TrainingDataError(
            f"no labelled transactions before {cut.mature_before.isoformat()} "
            f"(labels known by {cut.cut.isoformat()}) in the database"
        )
    return validate_labelled_frame(frame.astype(_DTYPES)[[*MODEL_INPUT_COLUMNS, LABEL_COLUMN]])


def read_labelled_history(settings: Settings, cut: LabelCut | None = None) -> pd.DataFrame:
    """``load_labelled_history`` from the fraudpipe database, connecting as the app role.

    Raises:
        ServiceUnavailableError: PostgreSQL is not reachable (or refuses the app role).
        TrainingDataError: No labelled rows, or rows the training schema refuses.
    """
    engine = sa.create_engine(settings.app_db_url, pool_pre_ping=True)
    try:
        return load_labelled_history(engine, cut)
    except sa.exc.OperationalError as exc:
        url = f"postgresql://{settings.pg_host}:{settings.pg_port}/{settings.pg_database}"
        raise ServiceUnavailableError("PostgreSQL", url) from exc
    except sa.exc.ProgrammingError as exc:
        if isinstance(exc.orig, psycopg.errors.UndefinedTable):
            raise TrainingDataError(
                f"database {settings.pg_database} has no transactions or labels table",
                hint="run the migrations, then ingest labelled days",
            ) from exc
        raise
    finally:
        engine.dispose()
