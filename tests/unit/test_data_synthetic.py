"""The synthetic-day generator keeps fraud rate, marginals, dependence and time of day."""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from fraudpipe.data.schemas import validate_raw
from fraudpipe.data.synthetic import (
    FEATURE_COLUMNS,
    FIRST_SYNTHETIC_DAY,
    POSITIONS_PER_DAY,
    DriftScenario,
    SyntheticDayGenerator,
    SyntheticSource,
)
from fraudpipe.errors import IngestRequestError
from fraudpipe.model.drift import BinnedColumn

pytestmark = pytest.mark.unit

FRAUD_RATE = 0.05
ROWS_PER_DAY = 8_000


def ks_statistic(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two ECDFs."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    gap = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(
        b, grid, side="right"
    ) / len(b)
    return float(np.abs(gap).max())


def spearman(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    return frame.rank().corr().to_numpy()


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """Two days of heavy-tailed, correlated, class-dependent rows (a stand-in for ULB)."""
    rng = np.random.default_rng(42)
    n = 2 * ROWS_PER_DAY
    fraud = rng.random(n) < FRAUD_RATE
    mixing = rng.normal(size=(28, 28)) / 6
    v = rng.standard_t(4, size=(n, 28)) @ (np.eye(28) + mixing)
    v[fraud, :5] += 3.0  # frauds sit elsewhere on a few components
    amount = np.round(np.exp(rng.normal(3.0, 1.2, n)) * np.where(fraud, 2.0, 1.0), 2)
    # Normal traffic by day, frauds more at night.
    hours = np.where(fraud, rng.integers(0, 6, n), rng.integers(8, 22, n))
    time = rng.integers(0, 2, n) * 86_400 + hours * 3600 + rng.integers(0, 3600, n)
    frame = pd.DataFrame(v, columns=[f"V{i}" for i in range(1, 29)])
    frame.insert(0, "Time", time.astype(np.float64))
    frame["Amount"] = amount
    frame["Class"] = fraud.astype(np.float64)
    return validate_raw(frame).valid


@pytest.fixture(scope="module")
def generator(reference: pd.DataFrame) -> SyntheticDayGenerator:
    return SyntheticDayGenerator.fit(reference)


@pytest.fixture(scope="module")
def week(generator: SyntheticDayGenerator) -> pd.DataFrame:
    days = [date(2025, 9, 22 + i) for i in range(4)]
    return pd.concat([generator.day(d, seed=7) for d in days])


def test_fraud_rate_and_volume_close_to_the_real_ones(week: pd.DataFrame) -> None:
    n = len(week)
    assert abs(n / 4 - ROWS_PER_DAY) < 4 * np.sqrt(ROWS_PER_DAY)
    rate = week["Class"].mean()
    assert abs(rate - FRAUD_RATE) < 4 * np.sqrt(FRAUD_RATE * (1 - FRAUD_RATE) / n)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_every_feature_marginal_matches_per_class(
    reference: pd.DataFrame, week: pd.DataFrame, label: float
) -> None:
    real = reference[reference["Class"] == label]
    fake = week[week["Class"] == label]
    # KS critical value at alpha=0.001 for these sample sizes, with some slack for quantile tables.
    critical = 1.95 * np.sqrt((len(real) + len(fake)) / (len(real) * len(fake)))
    for column in FEATURE_COLUMNS:
        stat = ks_statistic(real[column].to_numpy(), fake[column].to_numpy())
        assert stat < max(critical, 0.01), (column, stat)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_dependence_between_features_is_kept(
    reference: pd.DataFrame, week: pd.DataFrame, label: float
) -> None:
    cols = list(FEATURE_COLUMNS)
    real = spearman(reference.loc[reference["Class"] == label, cols])
    fake = spearman(week.loc[week["Class"] == label, cols])
    assert np.abs(real - fake).max() < (0.06 if label == 0.0 else 0.25)
    assert np.abs(real - fake).mean() < (0.01 if label == 0.0 else 0.06)


def test_time_of_day_profile_is_kept_per_class(week: pd.DataFrame) -> None:
    hour = (week["Time"] % 86_400) // 3600
    fraud_hours = hour[week["Class"] == 1.0]
    normal_hours = hour[week["Class"] == 0.0]
    assert (fraud_hours < 6).mean() > 0.9
    assert ((normal_hours >= 8) & (normal_hours < 22)).mean() > 0.99


def test_a_day_is_deterministic_per_seed_and_day(generator: SyntheticDayGenerator) -> None:
    day = date(2025, 9, 30)
    pd.testing.assert_frame_equal(generator.day(day, seed=3), generator.day(day, seed=3))
    assert not generator.day(day, seed=3).equals(generator.day(day, seed=4))
    assert not generator.day(day, seed=3)["V1"].equals(
        generator.day(date(2025, 10, 1), seed=3)["V1"]
    )


def test_rows_are_valid_raw_rows_inside_their_day(generator: SyntheticDayGenerator) -> None:
    day = date(2025, 9, 25)
    frame = generator.day(day, seed=1)
    offset = (day - date(2025, 9, 20)).days
    assert validate_raw(frame).reasons == {}
    assert frame["Time"].between(offset * 86_400, (offset + 1) * 86_400 - 1).all()
    assert frame["Time"].is_monotonic_increasing
    assert (frame["Amount"] >= 0).all()
    assert np.allclose(frame["Amount"], frame["Amount"].round(2))
    assert frame.index[0] == offset * POSITIONS_PER_DAY
    assert frame.index.is_unique


def test_days_before_the_first_synthetic_day_are_refused(generator: SyntheticDayGenerator) -> None:
    with pytest.raises(IngestRequestError, match=FIRST_SYNTHETIC_DAY.isoformat()):
        generator.day(date(2025, 9, 21), seed=1)


def test_source_is_named_and_marked_synthetic(generator: SyntheticDayGenerator) -> None:
    source = SyntheticSource(generator, seed=11)
    assert source.name == "synthetic-s11"
    assert source.is_synthetic is True
    with pytest.raises(IngestRequestError, match="name the days"):
        source.read(None)
    rows = source.read([date(2025, 9, 23), date(2025, 9, 22)])
    assert rows.frame["Time"].is_monotonic_increasing


def test_a_drift_scenario_leaves_the_days_before_it_and_moves_the_days_from_it(
    generator: SyntheticDayGenerator,
) -> None:
    drift = DriftScenario(date(2025, 9, 24))
    before = date(2025, 9, 23)
    pd.testing.assert_frame_equal(generator.day(before, 7, drift), generator.day(before, 7))
    plain, drifted = generator.day(drift.start, 7), generator.day(drift.start, 7, drift)
    # The same draws, moved: same rows, times and labels.
    pd.testing.assert_index_equal(plain.index, drifted.index)
    assert (plain[["Time", "Class"]] == drifted[["Time", "Class"]]).all().all()
    np.testing.assert_allclose(drifted["Amount"], np.round(plain["Amount"] * 1.5, 2), atol=0.011)
    fraud = plain["Class"] == 1
    for name in drift.FADED:  # frauds look more like normal rows
        normal_median = plain.loc[~fraud, name].median()
        gap = (plain.loc[fraud, name] - normal_median).abs().mean()
        assert (drifted.loc[fraud, name] - normal_median).abs().mean() < 0.5 * gap
    untouched = [c for c in FEATURE_COLUMNS if c not in (*drift.SHIFTED, *drift.FADED, "Amount")]
    assert (plain[untouched] == drifted[untouched]).all().all()


def test_psi_crosses_the_threshold_on_drifted_days_only(generator: SyntheticDayGenerator) -> None:
    drift = DriftScenario(date(2025, 9, 24))
    reference = generator.day(date(2025, 9, 22), 7)
    profile = {c: BinnedColumn.of(c, reference[c]) for c in FEATURE_COLUMNS}
    for day in (date(2025, 9, 23), date(2025, 9, 24), date(2025, 9, 25)):
        rows = generator.day(day, 7, drift)
        psi = {c: column.psi(rows[c]) for c, column in profile.items()}
        if drift.applies(day):
            assert min(psi[c] for c in drift.SHIFTED) > 0.2, psi
            assert psi["Amount"] > 0.05, psi  # a moderate shift
        else:
            assert max(psi.values()) < 0.1, psi


def test_a_drifting_source_is_named_apart(generator: SyntheticDayGenerator) -> None:
    source = SyntheticSource(generator, seed=7, drift=DriftScenario(date(2025, 9, 24)))
    assert source.name == "synthetic-s7-drift-2025-09-24"
    assert source.is_synthetic is True
