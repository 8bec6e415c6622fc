"""The promotion gate's decision rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fraudpipe.model.evaluation import ScorerMetrics
from fraudpipe.model.promotion import PromotionDecision, decide_promotion

pytestmark = pytest.mark.unit

CHAMPION = ScorerMetrics(
    average_precision=0.80,
    roc_auc=0.97,
    recall_at_0_1pct_fpr=0.70,
    recall_at_1pct_fpr=0.85,
    precision_at_100=0.9,
    brier=0.001,
    threshold=0.5,
    precision=0.8,
    recall=0.8,
    f1=0.8,
    true_negatives=1000,
    false_positives=10,
    false_negatives=10,
    true_positives=40,
    rows=1060,
    frauds=50,
)


def gate(
    candidate: ScorerMetrics, champion: ScorerMetrics | None = CHAMPION, margin: float = 0.0
) -> PromotionDecision:
    return decide_promotion(
        candidate, champion, champion_version=3, min_ap_gain=margin, guard_tolerance=0.01
    )


def test_first_version_becomes_champion() -> None:
    decision = gate(CHAMPION, champion=None)
    assert decision.promote and decision.alias == "champion"


def test_strictly_better_average_precision_is_promoted() -> None:
    decision = gate(replace(CHAMPION, average_precision=0.81))
    assert decision.promote
    assert "beats champion v3" in decision.reason


def test_an_equal_model_does_not_churn_the_champion() -> None:
    decision = gate(CHAMPION)
    assert not decision.promote and decision.alias == "challenger"


def test_the_gain_must_exceed_the_margin() -> None:
    assert not gate(replace(CHAMPION, average_precision=0.81), margin=0.02).promote
    assert gate(replace(CHAMPION, average_precision=0.83), margin=0.02).promote


@pytest.mark.parametrize("guard", ["roc_auc", "recall_at_1pct_fpr"])
def test_a_guard_regression_beyond_tolerance_blocks_promotion(guard: str) -> None:
    worse_guard = getattr(CHAMPION, guard) - 0.02
    decision = gate(replace(CHAMPION, average_precision=0.9, **{guard: worse_guard}))
    assert not decision.promote
    assert guard in decision.reason


def test_a_guard_drop_within_tolerance_is_allowed() -> None:
    assert gate(replace(CHAMPION, average_precision=0.9, roc_auc=0.965)).promote


def test_the_decision_is_written_as_flat_string_tags() -> None:
    tags = gate(replace(CHAMPION, average_precision=0.75)).as_tags()
    assert tags["promotion_decision"] == "challenger"
    assert tags["promotion_champion_version"] == "3"
    assert float(tags["promotion_champion_average_precision"]) == 0.80
    assert float(tags["promotion_candidate_average_precision"]) == 0.75
    assert all(isinstance(v, str) for v in tags.values())
