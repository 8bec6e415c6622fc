"""Labelled history from PostgreSQL: the app role reads exactly the labelled rows, as model input.

Runs against a fresh migrated database (`fresh_db`); rows are written as the app role, the way
ingestion writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from model_frames import store_transactions, synthetic_history

from fraudpipe.adapters.postgres.history import read_labelled_history
from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.errors import TrainingDataError
from fraudpipe.model.point_in_time import LabelCut

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stored(fresh_db: Settings) -> tuple[Settings, pd.DataFrame]:
    """Two days of rows in the fresh database; every 10th row has no label yet."""
    frame = synthetic_history(days=2, rows_per_day=150, fraud_rate=0.05, seed=3)
    return fresh_db, store_transactions(
        fresh_db, frame, "synthetic-history-test", unlabelled_every=10
    )


def test_the_app_role_reads_every_labelled_row_exactly(
    stored: tuple[Settings, pd.DataFrame],
) -> None:
    settings, frame = stored
    expected = frame.loc[frame["stored_label"].notna()].reset_index(drop=True)

    loaded = read_labelled_history(settings)

    assert list(loaded.columns) == [*MODEL_INPUT_COLUMNS, LABEL_COLUMN]
    assert loaded["event_time"].dtype == np.int64 and loaded[LABEL_COLUMN].dtype == np.int64
    assert loaded["event_time"].is_monotonic_increasing
    pd.testing.assert_frame_equal(
        loaded.sort_values(["event_time", "amount"]).reset_index(drop=True),
        expected[[*MODEL_INPUT_COLUMNS, LABEL_COLUMN]]
        .sort_values(["event_time", "amount"])
        .reset_index(drop=True),
    )


def test_no_labelled_rows_is_a_named_error(stored: tuple[Settings, pd.DataFrame]) -> None:
    settings, _ = stored
    before_any = LabelCut(datetime(2025, 9, 20, tzinfo=UTC), timedelta(0))
    with pytest.raises(TrainingDataError, match="no labelled transactions before 2025-09-20"):
        read_labelled_history(settings, before_any)
