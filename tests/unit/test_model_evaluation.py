"""Holdout metrics on hand-checked examples."""

from __future__ import annotations

import numpy as np
import pytest

from fraudpipe.errors import TrainingDataError
from fraudpipe.model.evaluation import (
    evaluate_scores,
    max_f1_threshold,
    precision_at_k,
    recall_at_fpr,
)

pytestmark = pytest.mark.unit


def test_recall_at_fpr_counts_frauds_above_the_budgeted_normals() -> None:
    # 1000 normals scored 0..999/1000, 4 frauds: two above every normal, two in the middle.
    normals = np.arange(1000) / 1000
    y = np.r_[np.zeros(1000), np.ones(4)]
    s = np.r_[normals, [2.0, 1.5, 0.5005, 0.4]]
    # 1% FPR = 10 normals flagged (scores >= 0.990): only the two top frauds are above them.
    assert recall_at_fpr(y, s, 0.01) == pytest.approx(0.5)
    # 50% FPR reaches down to 0.5, which catches the third fraud as well.
    assert recall_at_fpr(y, s, 0.5) == pytest.approx(0.75)
    assert recall_at_fpr(y, s, 0.0) == pytest.approx(0.5)


def test_precision_at_k_shares_ties_and_ignores_row_order() -> None:
    y = np.array([1, 0, 1, 0, 0, 0])
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1])
    # Top 2: one certain fraud at 0.9, then one place shared by four rows tied at 0.5 (1 fraud).
    assert precision_at_k(y, s, 2) == pytest.approx((1 + 1 / 4) / 2)
    order = np.random.default_rng(3).permutation(6)
    assert precision_at_k(y[order], s[order], 2) == pytest.approx(precision_at_k(y, s, 2))


def test_max_f1_threshold_separates_separable_scores() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    threshold = max_f1_threshold(y, s)
    assert 0.3 < threshold <= 0.7
    assert evaluate_scores(y, s, threshold).f1 == 1.0


def test_evaluate_scores_confusion_matrix_at_the_threshold() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.6, 0.7, 0.4, 0.8, 0.9])
    m = evaluate_scores(y, s, threshold=0.5)
    assert m.confusion_matrix() == [[2, 2], [1, 2]]
    assert (m.precision, m.recall) == pytest.approx((0.5, 2 / 3))
    assert (m.rows, m.frauds) == (7, 3)
    assert m.brier == pytest.approx(np.mean((s - y) ** 2))
    assert set(m.as_dict()) >= {"average_precision", "roc_auc", "recall_at_1pct_fpr", "brier"}


def test_a_slice_without_fraud_is_refused_with_a_hint() -> None:
    with pytest.raises(TrainingDataError, match="0 frauds"):
        evaluate_scores(np.zeros(5), np.linspace(0, 1, 5), 0.5)
