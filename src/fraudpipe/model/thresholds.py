"""Where to put the alert threshold: by review capacity, by cost, or at the best F1.

A fraud team does not pick a threshold for its F1. It has analysts who can review so many
alerts a day, or it weighs what a missed fraud loses against what a review costs:

- ``budget``: at most ``alerts_per_day`` alerts a day. Chosen on the holdout's scores, the
  final model on the latest days, which is the best guess of tomorrow's volume. It reads no
  label, so the holdout's precision and recall at it stay honest.
- ``cost``: the least expected loss, a missed fraud costing its amount and every alert
  ``review_cost``. It reads labels and amounts, so it is chosen where max-F1 is: on the pooled
  out-of-fold validation scores inside the training window, never on the holdout.
- ``max_f1``: the best F1 on those validation scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudpipe.config import Settings
from fraudpipe.errors import ConfigurationError

ThresholdKind = Literal["budget", "cost", "max_f1"]
THRESHOLD_KINDS: Final = ("budget", "cost", "max_f1")
#: Points on the alert trade-off curve logged with each model.
TRADEOFF_POINTS: Final = 200


@dataclass(frozen=True)
class ThresholdRule:
    """How a training places its alert threshold.

    Attributes:
        kind: ``budget``, ``cost`` or ``max_f1`` (see the module docstring).
        alerts_per_day: The review capacity the ``budget`` rule fits.
        review_cost: What one review costs, in the amount's currency (``cost`` rule).
    """

    kind: ThresholdKind = "max_f1"
    alerts_per_day: int = 300
    review_cost: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in THRESHOLD_KINDS:
            raise ConfigurationError(
                f"threshold rule {self.kind!r} is not one of {THRESHOLD_KINDS}"
            )
        if self.alerts_per_day < 1:
            raise ConfigurationError(f"alerts_per_day={self.alerts_per_day} (needs >= 1)")
        if not 0.0 < self.review_cost < 1e9:
            raise ConfigurationError(f"review_cost={self.review_cost} (needs 0 < x < 1e9)")

    def describe(self) -> str:
        """The rule in words, for the model's record."""
        if self.kind == "budget":
            return (
                f"at most {self.alerts_per_day:,} alerts a day on the holdout's scores "
                "(the review budget)"
            )
        if self.kind == "cost":
            return (
                f"least expected loss (a missed fraud costs its amount, a review "
                f"{self.review_cost:g}) on pooled out-of-fold validation scores inside the "
                "training window"
            )
        return "max F1 on pooled out-of-fold validation scores inside the training window"


def rule_from(settings: Settings) -> ThresholdRule:
    """The rule the settings give a training (``FRAUDPIPE_THRESHOLD_RULE`` and its values)."""
    return ThresholdRule(
        settings.threshold_rule, settings.alert_budget_per_day, settings.review_cost
    )


def budget_threshold(scores: npt.ArrayLike, days: int, alerts_per_day: int) -> float:
    """The lowest threshold raising at most ``alerts_per_day × days`` alerts on ``scores``.

    Ties never push the count over the budget: a tie group that would cross it is left out.
    """
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    cap = alerts_per_day * days
    if cap >= s.size:
        return float(s[-1])
    first_left_out = s[cap]
    above = s[:cap][s[:cap] > first_left_out]
    return float(above[-1]) if above.size else float(np.nextafter(first_left_out, np.inf))


def _ranked(
    scores: npt.ArrayLike, weights: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Scores high to low, the running sum of ``weights`` in that order, and the tie groups' ends.

    Only the end of a tie group is a threshold one can set: alerting at ``s[i]`` raises every
    alert up to and including index ``ends[k]`` for the group holding ``i``.
    """
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    s = s[order]
    running = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    return s, running, np.flatnonzero(np.append(s[:-1] > s[1:], True))


def cost_threshold(
    labels: npt.ArrayLike, scores: npt.ArrayLike, amounts: npt.ArrayLike, review_cost: float
) -> float:
    """The threshold with the least cost: missed frauds' amounts plus ``review_cost`` per alert."""
    fraud = np.asarray(labels, dtype=np.int64) == 1
    s, caught, ends = _ranked(scores, np.asarray(amounts, dtype=np.float64) * fraud)
    missed = caught[-1] - caught[ends]
    cost = missed + review_cost * (ends + 1)
    best = int(np.argmin(cost))
    if caught[-1] <= cost[best]:  # flagging nothing is cheaper still
        return float(np.nextafter(s[0], np.inf))
    return float(s[ends[best]])


def alert_tradeoff(labels: npt.ArrayLike, scores: npt.ArrayLike, days: int) -> pd.DataFrame:
    """Alerts a day against recall and precision, at ``TRADEOFF_POINTS`` thresholds.

    Columns: ``threshold``, ``alerts_per_day``, ``recall``, ``precision``; from the fewest
    alerts to the most.
    """
    s, hits, ends = _ranked(scores, np.asarray(labels, dtype=np.int64) == 1)
    picked = ends[np.unique(np.linspace(0, ends.size - 1, TRADEOFF_POINTS).astype(np.int64))]
    alerts = picked + 1
    frauds = max(int(hits[-1]), 1)
    return pd.DataFrame(
        {
            "threshold": s[picked],
            "alerts_per_day": alerts / days,
            "recall": hits[picked] / frauds,
            "precision": hits[picked] / alerts,
        }
    )
