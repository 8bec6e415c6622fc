"""The promotion gate: does a candidate beat the champion on the same holdout?

Pure logic on two sets of metrics, both computed by re-scoring on the candidate's holdout (a
champion's own logged metrics came from an older, different holdout and are never trusted here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fraudpipe.model.evaluation import ScorerMetrics

GUARD_METRICS: Final = ("roc_auc", "recall_at_1pct_fpr")
"""Metrics a candidate may not lose (beyond the tolerance) to win on average precision."""


@dataclass(frozen=True)
class PromotionDecision:
    """The gate's verdict and the numbers behind it."""

    promote: bool
    reason: str
    candidate: ScorerMetrics
    champion: ScorerMetrics | None
    champion_version: int | None
    min_ap_gain: float
    guard_tolerance: float

    @property
    def alias(self) -> str:
        """The alias the candidate gets: ``champion`` or ``challenger``."""
        return "champion" if self.promote else "challenger"

    def as_tags(self) -> dict[str, str]:
        """The decision as registered-model-version tags (flat strings, searchable)."""
        tags = {
            "promotion_decision": self.alias,
            "promotion_reason": self.reason,
            "promotion_min_ap_gain": repr(self.min_ap_gain),
            "promotion_guard_tolerance": repr(self.guard_tolerance),
            "promotion_champion_version": str(self.champion_version or ""),
            "promotion_candidate_average_precision": repr(self.candidate.average_precision),
        }
        for metric in GUARD_METRICS:
            tags[f"promotion_candidate_{metric}"] = repr(getattr(self.candidate, metric))
        if self.champion is not None:
            tags["promotion_champion_average_precision"] = repr(self.champion.average_precision)
            for metric in GUARD_METRICS:
                tags[f"promotion_champion_{metric}"] = repr(getattr(self.champion, metric))
        return tags


def decide_promotion(
    candidate: ScorerMetrics,
    champion: ScorerMetrics | None,
    *,
    champion_version: int | None,
    min_ap_gain: float,
    guard_tolerance: float,
) -> PromotionDecision:
    """Promote only a strict improvement in average precision with no guard regression.

    Args:
        candidate: The new version's metrics on the holdout.
        champion: The current champion re-scored on the same holdout; ``None`` if there is none.
        champion_version: The champion's version number, for the record.
        min_ap_gain: The AP gain must be greater than this (0.0: any strict gain).
        guard_tolerance: Each guard metric may drop by at most this much.

    Returns:
        The decision, with the reason spelled out in numbers.
    """

    def verdict(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promote, reason, candidate, champion, champion_version, min_ap_gain, guard_tolerance
        )

    if champion is None:
        return verdict(True, "no champion yet: the first version becomes champion")
    gain = candidate.average_precision - champion.average_precision
    if gain <= min_ap_gain:
        return verdict(
            False,
            f"average precision {candidate.average_precision:.4f} vs champion "
            f"v{champion_version} {champion.average_precision:.4f} (gain {gain:+.4f}) "
            f"does not exceed the required gain {min_ap_gain:g}",
        )
    regressions = [
        f"{m} {getattr(candidate, m):.4f} < {getattr(champion, m):.4f} - {guard_tolerance:g}"
        for m in GUARD_METRICS
        if getattr(candidate, m) < getattr(champion, m) - guard_tolerance
    ]
    if regressions:
        return verdict(
            False,
            f"average precision gain {gain:+.4f} but guard metric regressed: "
            + "; ".join(regressions),
        )
    return verdict(
        True,
        f"average precision {candidate.average_precision:.4f} beats champion "
        f"v{champion_version} {champion.average_precision:.4f} (gain {gain:+.4f} > "
        f"{min_ap_gain:g}) and no guard metric fell by more than {guard_tolerance:g}",
    )
