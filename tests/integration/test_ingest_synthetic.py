"""Synthetic days fitted on the real ULB data: close to it, labelled synthetic, idempotent."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudpipe.adapters.postgres.batches import BatchRepository
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.data.resolve import fit_on_ulb
from fraudpipe.data.synthetic import FEATURE_COLUMNS, SyntheticDayGenerator, SyntheticSource
from fraudpipe.data.ulb import ULB_FRAUDS, ULB_ROWS
from fraudpipe.ingest import ingest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def generator(stack: Settings, ulb_csv: Path) -> SyntheticDayGenerator:
    return fit_on_ulb(stack)


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    gap = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(
        b, grid, side="right"
    ) / len(b)
    return float(np.abs(gap).max())


def test_a_synthetic_day_looks_like_a_real_one(
    generator: SyntheticDayGenerator, ulb_csv: Path
) -> None:
    real = pd.read_csv(ulb_csv)
    fake = generator.day(date(2025, 9, 22), seed=7)
    real_rate = ULB_FRAUDS / ULB_ROWS
    assert abs(len(fake) - ULB_ROWS / 2) < 5 * np.sqrt(ULB_ROWS / 2)
    assert abs(fake["Class"].mean() - real_rate) < 4 * np.sqrt(real_rate / len(fake))
    for column in FEATURE_COLUMNS:
        assert _ks(real[column].to_numpy(), fake[column].to_numpy()) < 0.01, column
    fraud_real, normal_real = real[real["Class"] == 1], real[real["Class"] == 0]
    fraud_fake, normal_fake = fake[fake["Class"] == 1], fake[fake["Class"] == 0]
    for column in ("V14", "V17", "V12", "V10", "Amount"):  # where frauds differ most
        assert _ks(fraud_real[column].to_numpy(), fraud_fake[column].to_numpy()) < 0.15, column
        # Frauds stand apart from normal rows as much as they do in the real data.
        real_gap = _ks(fraud_real[column].to_numpy(), normal_real[column].to_numpy())
        fake_gap = _ks(fraud_fake[column].to_numpy(), normal_fake[column].to_numpy())
        assert abs(real_gap - fake_gap) < 0.1, (column, real_gap, fake_gap)
    hours = lambda f: ((f["Time"] % 86_400) // 3600).value_counts(normalize=True).sort_index()  # noqa: E731
    assert (hours(real) - hours(fake)).abs().max() < 0.01


def test_synthetic_day_is_stored_as_synthetic_and_a_rerun_adds_nothing(
    generator: SyntheticDayGenerator, fresh_db: Settings
) -> None:
    source = SyntheticSource(generator, seed=99)
    day = date(2025, 9, 23)
    report = ingest(fresh_db, source, [day])
    assert report.is_synthetic
    assert report.summary_line().startswith("synthetic-s99 [SYNTHETIC]: 1 batch(es)")
    [batch] = report.batches
    assert batch.batch_id == "synthetic-s99:2025-09-23"
    assert batch.loaded == len(generator.day(day, seed=99)) == batch.rows_read
    with connect(fresh_db) as conn:
        stored = BatchRepository(conn).get(batch.batch_id)
        frauds = conn.execute(
            "SELECT sum(label) FROM transactions WHERE batch_id = %s", (batch.batch_id,)
        ).fetchone()
    assert stored is not None and stored.is_synthetic and stored.source == "synthetic-s99"
    assert frauds == (batch.frauds,)
    again = ingest(fresh_db, SyntheticSource(generator, seed=99), [day])
    assert [b.outcome for b in again.batches] == ["unchanged"]
