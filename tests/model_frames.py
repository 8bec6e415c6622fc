"""Labelled frames for the model's tests: small synthetic days with a known fraud pattern, and a
stratified slice of the real ULB file when it is cached.

Synthetic frauds have strongly negative v14/v17/v12, larger amounts and lean to the night; a share
of them (``hidden``) look exactly like normal rows, so even a perfect model cannot reach AP = 1
and a worse model has room to be measurably worse.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from fraudpipe.adapters.postgres.bulk_load import ensure_batch_partition
from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.config import Settings

DAY_ZERO_MS = int(datetime(2025, 9, 20, tzinfo=UTC).timestamp() * 1000)
MS_PER_DAY = 86_400_000
FRAUD_SHIFT = {"v14": -5.0, "v17": -4.0, "v12": -3.0, "v4": 2.5, "v11": 2.0}


def synthetic_history(
    days: int = 3,
    rows_per_day: int = 3000,
    fraud_rate: float = 0.02,
    hidden: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """A labelled frame over ``days`` calendar days starting 2025-09-20 (UTC)."""
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    label = (rng.random(n) < fraud_rate).astype(np.int64)
    visible = (label == 1) & (rng.random(n) >= hidden)
    day = np.repeat(np.arange(days), rows_per_day)
    # Normals spread over the day; visible frauds lean to the night (60% between 00:00 and 06:00).
    at_night = visible & (rng.random(n) < 0.6)
    offset = np.where(
        at_night,
        rng.integers(0, 6 * 3_600_000, n),
        rng.integers(0, MS_PER_DAY, n),
    )
    frame = pd.DataFrame(
        {
            "event_time": (DAY_ZERO_MS + day * MS_PER_DAY + offset).astype(np.int64),
            "amount": np.round(rng.lognormal(3.0, 1.0, n) * np.where(visible, 4.0, 1.0), 2),
            **{v: rng.normal(0.0, 1.0, n) for v in V_COLUMNS},
            LABEL_COLUMN: label,
        }
    )
    for column, shift in FRAUD_SHIFT.items():
        frame.loc[visible, column] += shift
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)


def normal_and_fraud_rows() -> pd.DataFrame:
    """Two model-input rows at the same instant: a plain one and one with the fraud pattern."""
    base = {c: 0.0 for c in MODEL_INPUT_COLUMNS}
    base["event_time"] = DAY_ZERO_MS + 3 * MS_PER_DAY + 2 * 3_600_000
    base["amount"] = 20.0
    fraud = dict(base) | {c: base.get(c, 0.0) + s for c, s in FRAUD_SHIFT.items()}
    fraud["amount"] = 80.0
    frame = pd.DataFrame([base, fraud])[MODEL_INPUT_COLUMNS]
    return frame.astype({"event_time": "int64"})


def ulb_slice(csv: Path, normal_fraction: float = 0.08, seed: int = 7) -> pd.DataFrame:
    """Every fraud of the real ULB file plus a seeded share of its normals (both days)."""
    from fraudpipe.retrain.ulb_history import history_from_ulb_csv

    full = history_from_ulb_csv(csv)
    rng = np.random.default_rng(seed)
    keep = (full[LABEL_COLUMN] == 1).to_numpy() | (rng.random(len(full)) < normal_fraction)
    return full.loc[keep].reset_index(drop=True)


def store_transactions(
    settings: Settings, frame: pd.DataFrame, source: str, unlabelled_every: int = 0
) -> pd.DataFrame:
    """Write a labelled frame into ``batches`` and ``transactions`` as the app role.

    One batch per calendar day, as ingestion would; every ``unlabelled_every``-th row is stored
    without a label. Returns the frame with a ``stored_label`` column (``<NA>`` = unlabelled).
    """
    frame = frame.copy()
    frame["stored_label"] = frame[LABEL_COLUMN].astype("Int64")
    if unlabelled_every:
        frame.loc[frame.index % unlabelled_every == 0, "stored_label"] = pd.NA
    days = pd.to_datetime(frame["event_time"], unit="ms", utc=True).dt.date
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "fraudpipe-tests")
    conninfo = psycopg.conninfo.make_conninfo(
        host=settings.pg_host,
        port=settings.pg_port,
        dbname=settings.pg_database,
        user=settings.pg_app_user,
        password=settings.pg_app_password.get_secret_value(),
    )
    columns = ["transaction_id", "batch_id", "source_row", "event_time", "amount", *V_COLUMNS]
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        for day, count in days.value_counts().sort_index().items():
            cur.execute(
                "INSERT INTO batches (batch_id, source, batch_date, is_synthetic, row_count,"
                " content_sha256, status, loaded_at) VALUES (%s, %s, %s, true, %s, 'test',"
                " 'loaded', now())",
                (f"{source}:{day.isoformat()}", source, day, int(count)),
            )
            ensure_batch_partition(conn, f"{source}:{day.isoformat()}")
        cur.executemany(
            f"INSERT INTO transactions ({', '.join(columns)}, label)"
            f" VALUES ({', '.join(['%s'] * (len(columns) + 1))})",
            [
                (
                    uuid.uuid5(namespace, f"{source}:{i}"),
                    f"{source}:{day.isoformat()}",
                    i,
                    datetime.fromtimestamp(row.event_time / 1000, tz=UTC),
                    row.amount,
                    *(getattr(row, v) for v in V_COLUMNS),
                    None if pd.isna(row.stored_label) else int(row.stored_label),
                )
                for i, (day, row) in enumerate(
                    zip(days, frame.itertuples(index=False), strict=True)
                )
            ],
        )
    return frame
