"""The features' bounds, from the real data, at the two doors a file passes: the raw-row
contract (rows quarantined with the reason) and the CHECK constraint on `transactions`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from raw_files import raw_frame, write_csv

from fraudpipe.adapters.postgres.bounds import PREFIX, apply_bounds, constraint_name
from fraudpipe.adapters.postgres.bulk_load import ensure_batch_partition
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.columns import FEATURE_COLUMNS, V_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.data.bounds import OBSERVED, feature_bounds
from fraudpipe.data.files import FileSource
from fraudpipe.ingest import ingest

pytestmark = pytest.mark.integration


def test_the_observed_ranges_are_the_real_datasets(ulb_csv: Path) -> None:
    frame = pd.read_csv(ulb_csv)
    for name in FEATURE_COLUMNS:
        column = frame["Amount" if name == "amount" else name.upper()]
        assert OBSERVED[name] == (float(column.min()), float(column.max())), name


def test_extreme_finite_values_are_quarantined_with_their_bounds(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    """The 200-row file of the issue: V28 = 1e308, V14 = -1e308, Amount = 1e300, and more."""
    frame = raw_frame(200, seconds_apart=300.0)
    bad = {
        10: ("V28", 1e308),
        20: ("V14", -1e308),
        30: ("Amount", 1e300),
        40: ("V1", 5e-324 - 1e6),
        50: ("V5", np.nextafter(feature_bounds().of("v5")[1], np.inf)),
        60: ("V7", -np.inf),
        70: ("Amount", np.inf),
    }
    for row, (column, value) in bad.items():
        frame.loc[row, column] = value
    source = FileSource(write_csv(frame, tmp_path / f"extreme_{unique}.csv"))
    report = ingest(fresh_db, source)
    assert report.loaded == 200 - len(bad)
    assert report.quarantined == len(bad)
    with connect(fresh_db) as conn:
        reasons = dict(
            conn.execute(
                "SELECT source_row, reason FROM quarantine WHERE source = %s", (source.name,)
            ).fetchall()
        )
    assert sorted(reasons) == sorted(bad)
    low, high = feature_bounds().of("v28")
    assert reasons[10] == f"V28: 1e+308 is outside [{low:.6g}, {high:.6g}]"
    assert reasons[30].startswith("Amount: 1e+300 is outside [0, 51382.3]")
    assert reasons[70].startswith("Amount: inf is outside")


def _insert(conn: psycopg.Connection[tuple[object, ...]], batch_id: str, **values: float) -> None:
    row = {"amount": 10.0, **{v: 0.0 for v in V_COLUMNS}, **values}
    columns = ", ".join(["transaction_id", "batch_id", "source_row", "event_time", *row])
    marks = ", ".join(["%s"] * (4 + len(row)))
    conn.execute(
        f"INSERT INTO transactions ({columns}) VALUES ({marks})",
        (uuid.uuid4(), batch_id, 1, datetime(2025, 9, 20, tzinfo=UTC), *row.values()),
    )


@pytest.mark.parametrize(
    "values", [{"v28": 1e308}, {"v14": -1e308}, {"amount": 1e300}, {"v3": float("nan")}]
)
def test_the_database_refuses_a_row_beyond_its_bounds(
    fresh_db: Settings, values: dict[str, float]
) -> None:
    with connect(fresh_db, autocommit=True) as conn:
        ensure_batch_partition(conn, "direct:2025-09-20")
        with pytest.raises(psycopg.errors.CheckViolation, match=PREFIX):
            _insert(conn, "direct:2025-09-20", **values)
        _insert(conn, "direct:2025-09-20", v28=33.0)  # inside: stored


def test_the_constraint_follows_the_margin_and_refuses_to_narrow_past_stored_rows(
    fresh_db: Settings,
) -> None:
    with connect(fresh_db, "owner", autocommit=True) as conn:
        assert not apply_bounds(conn, feature_bounds(1.0))  # upgrade put it there already
        assert apply_bounds(conn, feature_bounds(2.0))
        names = [
            r[0]
            for r in conn.execute(
                "SELECT conname FROM pg_constraint WHERE conname LIKE %s", (PREFIX + "%",)
            )
        ]
        assert set(names) == {constraint_name(feature_bounds(2.0))}
    with connect(fresh_db, autocommit=True) as conn:
        ensure_batch_partition(conn, "wide:2025-09-20")
        _insert(conn, "wide:2025-09-20", v28=120.0)  # inside margin 2, beyond margin 1
    with connect(fresh_db, "owner", autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            apply_bounds(conn, feature_bounds(1.0))
        assert constraint_name(feature_bounds(2.0)) in {
            r[0] for r in conn.execute("SELECT conname FROM pg_constraint")
        }
