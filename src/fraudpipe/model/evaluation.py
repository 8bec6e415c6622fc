"""Holdout metrics for a fraud scorer: ranking quality first, then the chosen threshold.

Average precision is the primary metric: with 0.17% fraud, ROC AUC is dominated by the easy
negatives, while AP tracks what an analyst queue sees. The threshold rule is max F1 on
out-of-fold validation scores inside the training window (see ``max_f1_threshold``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from fraudpipe.errors import TrainingDataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TOP_K = 100


@dataclass(frozen=True)
class ScorerMetrics:
    """How well one set of scores ranks and classifies one labelled slice."""

    average_precision: float
    roc_auc: float
    recall_at_0_1pct_fpr: float
    recall_at_1pct_fpr: float
    precision_at_100: float
    brier: float
    threshold: float
    precision: float
    recall: float
    f1: float
    true_negatives: int
    false_positives: int
    false_negatives: int
    true_positives: int
    rows: int
    frauds: int

    def as_dict(self) -> dict[str, float]:
        """Every metric as a float, keyed by name (MLflow metrics, tags, reports)."""
        return {k: float(v) for k, v in asdict(self).items()}

    def confusion_matrix(self) -> list[list[int]]:
        """``[[tn, fp], [fn, tp]]``: rows are the truth (normal, fraud), columns the decision."""
        return [
            [self.true_negatives, self.false_positives],
            [self.false_negatives, self.true_positives],
        ]


def _check_labels(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"{y.shape[0]} labels but {s.shape[0]} scores")
    frauds = int(y.sum())
    if frauds == 0 or frauds == y.shape[0]:
        raise TrainingDataError(
            f"a slice of {y.shape[0]} rows has {frauds} frauds; ranking metrics need both classes",
            hint="widen the window (more labelled days) or lower holdout_days",
        )
    return y, s


def recall_at_fpr(y_true: npt.ArrayLike, scores: npt.ArrayLike, max_fpr: float) -> float:
    """The best recall reachable while flagging at most ``max_fpr`` of the normal rows.

    Args:
        y_true: 0/1 labels.
        scores: Higher means more likely fraud.
        max_fpr: The false-positive-rate budget, e.g. 0.01.

    Returns:
        The largest true-positive rate over thresholds whose false-positive rate fits the budget.
    """
    y, s = _check_labels(y_true, scores)
    # Every threshold, not only the convex corners: a dropped collinear point can be the best
    # one inside the budget.
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return float(tpr[fpr <= max_fpr].max())


def precision_at_k(y_true: npt.ArrayLike, scores: npt.ArrayLike, k: int = TOP_K) -> float:
    """Share of frauds among the ``k`` highest scores (an analyst's daily review queue).

    Rows tied at the k-th score share the remaining places pro rata, so the value does not
    depend on row order.
    """
    y, s = _check_labels(y_true, scores)
    k = min(k, y.shape[0])
    kth = np.partition(s, y.shape[0] - k)[y.shape[0] - k]
    above = s > kth
    tied = s == kth
    places_left = k - int(above.sum())
    tied_frauds = float(y[tied].sum()) * places_left / float(tied.sum())
    return (float(y[above].sum()) + tied_frauds) / k


def max_f1_threshold(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """The score threshold (flag when ``score >= threshold``) with the best F1 on these labels.

    Meant for validation scores inside the training window, never for the holdout.
    """
    y, s = _check_labels(y_true, scores)
    precision, recall, thresholds = precision_recall_curve(y, s)
    # The last precision/recall pair has no threshold (it is the "flag nothing" end point).
    p, r = precision[:-1], recall[:-1]
    denom = p + r
    f1 = np.divide(2 * p * r, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(thresholds[int(np.argmax(f1))])


def evaluate_scores(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, threshold: float
) -> ScorerMetrics:
    """All holdout metrics for one scorer.

    Args:
        y_true: 0/1 labels of the slice.
        scores: Fraud probabilities for the same rows.
        threshold: Flag a row as fraud when its score is at least this.

    Returns:
        Ranking metrics, calibration (Brier) and the confusion matrix at ``threshold``.
    """
    y, s = _check_labels(y_true, scores)
    flagged = s >= threshold
    tp = int(np.sum(flagged & (y == 1)))
    fp = int(np.sum(flagged & (y == 0)))
    fn = int(np.sum(~flagged & (y == 1)))
    tn = int(np.sum(~flagged & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ScorerMetrics(
        average_precision=float(average_precision_score(y, s)),
        roc_auc=float(roc_auc_score(y, s)),
        recall_at_0_1pct_fpr=recall_at_fpr(y, s, 0.001),
        recall_at_1pct_fpr=recall_at_fpr(y, s, 0.01),
        precision_at_100=precision_at_k(y, s, TOP_K),
        brier=float(brier_score_loss(y, s)),
        threshold=float(threshold),
        precision=precision,
        recall=recall,
        f1=f1,
        true_negatives=tn,
        false_positives=fp,
        false_negatives=fn,
        true_positives=tp,
        rows=int(y.shape[0]),
        frauds=int(y.sum()),
    )
