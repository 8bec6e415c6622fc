"""PSI against a reference profile: zero on the reference itself, large on a shifted batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudpipe.columns import MODEL_INPUT_COLUMNS
from fraudpipe.model.drift import PROFILED, SCORE, BinnedColumn, ReferenceProfile


def columns(n: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {c: rng.normal(shift, 1.0, n) for c in MODEL_INPUT_COLUMNS if c != "event_time"}
    out["amount"] = rng.exponential(80.0, n)
    out["event_time"] = rng.integers(0, 2 * 86_400_000, n)
    return out


def test_a_batch_from_the_reference_population_is_stable() -> None:
    reference = ReferenceProfile.of(
        columns(50_000, 1), np.random.default_rng(1).beta(1, 30, 50_000), 0.002
    )
    psi = reference.psi(columns(20_000, 2), np.random.default_rng(2).beta(1, 30, 20_000))
    assert set(psi) == {*PROFILED, SCORE}
    assert max(psi.values()) < 0.02


def test_a_shifted_feature_crosses_the_threshold_and_only_it() -> None:
    reference = ReferenceProfile.of(columns(50_000, 1), np.zeros(50_000), 0.002)
    batch = columns(20_000, 2)
    batch["v14"] = batch["v14"] + 1.0  # one standard deviation
    psi = reference.psi(batch, np.zeros(20_000))
    assert psi["v14"] > 0.2
    assert max(v for k, v in psi.items() if k != "v14") < 0.02


def test_values_beyond_the_reference_land_in_the_open_outer_bins() -> None:
    column = BinnedColumn.of("x", np.arange(1_000.0))
    shares = column.shares_of([-1e300, 1e300])
    assert shares[0] == shares[-1] == 0.5
    assert np.isfinite(column.psi([1e300] * 10))


def test_a_column_of_ties_gets_fewer_bins_not_empty_ones() -> None:
    column = BinnedColumn.of("score", np.r_[np.zeros(9_000), np.linspace(0.1, 1.0, 1_000)])
    assert len(column.edges) < 9 and min(column.shares) > 0
    assert column.psi(np.zeros(100)) > 0  # all in the first bin: a shift


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
)
def test_psi_is_never_negative_and_zero_on_the_reference_itself(
    reference: list[float], batch: list[float]
) -> None:
    column = BinnedColumn.of("x", reference)
    assert column.psi(batch) >= 0.0
    assert column.psi(reference) == pytest.approx(0.0, abs=1e-12)
    assert sum(column.shares) == pytest.approx(1.0) and min(column.shares) > 0


def test_the_profile_survives_its_json_artifact() -> None:
    reference = ReferenceProfile.of(
        columns(5_000, 1), np.random.default_rng(1).random(5_000), 0.002
    )
    again = ReferenceProfile.from_dict(json.loads(json.dumps(reference.as_dict())))
    assert again == reference
    broken = reference.as_dict()
    broken["columns"][0]["shares"] = [1.0]
    with pytest.raises(ValueError, match="not a binned share"):
        ReferenceProfile.from_dict(broken)
    huge = reference.as_dict()
    huge["columns"][1]["edges"] = list(range(10**6))
    with pytest.raises(ValueError, match="not a binned share"):
        ReferenceProfile.from_dict(huge)
    renamed = reference.as_dict()
    renamed["columns"][0]["name"] = "v99"
    with pytest.raises(ValueError, match="are not"):
        ReferenceProfile.from_dict(renamed)
    rate = reference.as_dict() | {"expected_alert_rate": 2.0}
    with pytest.raises(ValueError, match="not a share"):
        ReferenceProfile.from_dict(rate)
