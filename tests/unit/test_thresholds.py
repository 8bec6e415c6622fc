"""Alert thresholds by review budget and by cost, checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudpipe.errors import ConfigurationError
from fraudpipe.model.thresholds import (
    ThresholdRule,
    alert_tradeoff,
    budget_threshold,
    cost_threshold,
)

# Few distinct values, so ties are common.
SCORES = st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0]), min_size=1)


@given(scores=SCORES, days=st.integers(1, 3), per_day=st.integers(1, 20))
@settings(max_examples=300, deadline=None)
def test_the_budget_threshold_flags_the_most_alerts_within_the_budget(
    scores: list[float], days: int, per_day: int
) -> None:
    s = np.array(scores)
    threshold = budget_threshold(s, days, per_day)
    flagged = int((s >= threshold).sum())
    assert flagged <= days * per_day
    # No lower threshold among the scores stays within the budget and flags more.
    best = max(
        (int((s >= t).sum()) for t in np.unique(s) if (s >= t).sum() <= days * per_day),
        default=0,
    )
    assert flagged == best


def test_a_tie_that_would_cross_the_budget_is_left_out() -> None:
    s = np.array([0.9, 0.8, 0.8, 0.8, 0.1])
    threshold = budget_threshold(s, days=1, alerts_per_day=2)
    assert int((s >= threshold).sum()) == 1


@given(
    rows=st.lists(
        st.tuples(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]), st.booleans(), st.floats(0, 500)),
        min_size=1,
        max_size=40,
    ),
    review=st.floats(0.5, 100),
)
@settings(max_examples=300, deadline=None)
def test_the_cost_threshold_has_the_least_cost(
    rows: list[tuple[float, bool, float]], review: float
) -> None:
    s = np.array([r[0] for r in rows])
    y = np.array([int(r[1]) for r in rows])
    a = np.array([r[2] for r in rows])

    def cost(t: float) -> float:
        flagged = s >= t
        return float(a[(y == 1) & ~flagged].sum() + review * flagged.sum())

    chosen = cost_threshold(y, s, a, review)
    candidates = [*np.unique(s), np.nextafter(s.max(), np.inf)]
    assert cost(chosen) == pytest.approx(min(cost(t) for t in candidates))


def test_the_tradeoff_runs_from_few_alerts_to_many() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(5000) < 0.02).astype(int)
    s = np.clip(rng.normal(0.2 + 0.5 * y, 0.15), 0, 1)
    curve = alert_tradeoff(y, s, days=2)
    assert curve["alerts_per_day"].is_monotonic_increasing
    assert curve["recall"].is_monotonic_increasing
    assert curve["alerts_per_day"].iat[-1] == 2500
    assert curve["recall"].iat[-1] == 1.0
    assert len(curve) <= 200


def test_a_rule_refuses_what_it_cannot_mean() -> None:
    with pytest.raises(ConfigurationError, match="alerts_per_day=0"):
        ThresholdRule("budget", alerts_per_day=0)
    with pytest.raises(ConfigurationError, match="review_cost"):
        ThresholdRule("cost", review_cost=0.0)
    with pytest.raises(ConfigurationError, match="not one of"):
        ThresholdRule("median")  # type: ignore[arg-type]
