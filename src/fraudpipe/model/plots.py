"""Evaluation plots as matplotlib figures, built without pyplot.

``Figure`` objects render through the Agg canvas on save, so nothing here selects a backend or
touches global pyplot state (safe inside Prefect workers and servers without a display).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from fraudpipe.model.evaluation import ScorerMetrics


def pr_curve_figure(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, metrics: ScorerMetrics, title: str
) -> Figure:
    """Precision-recall curve with the fraud base rate and the chosen threshold marked."""
    precision, recall, _ = precision_recall_curve(y_true, scores)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    ax.step(recall, precision, where="post", label=f"AP = {metrics.average_precision:.4f}")
    ax.axhline(metrics.frauds / metrics.rows, linestyle=":", color="grey", label="base rate")
    ax.plot(
        [metrics.recall],
        [metrics.precision],
        "o",
        color="crimson",
        label=f"threshold {metrics.threshold:.3g}",
    )
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def roc_curve_figure(
    y_true: npt.ArrayLike, scores: npt.ArrayLike, metrics: ScorerMetrics, title: str
) -> Figure:
    """ROC curve on a log false-positive axis: the low-FPR end is where fraud alerting lives."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    floor = 1.0 / max(1, metrics.rows - metrics.frauds)
    ax.step(np.maximum(fpr, floor), tpr, where="post", label=f"AUC = {metrics.roc_auc:.4f}")
    for budget in (0.001, 0.01):
        ax.axvline(budget, linestyle=":", color="grey")
    ax.set_xscale("log")
    ax.set(
        xlabel="false-positive rate (log)",
        ylabel="recall",
        xlim=(floor, 1),
        ylim=(0, 1.02),
        title=title,
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def confusion_matrix_figure(metrics: ScorerMetrics, title: str) -> Figure:
    """The 2×2 confusion matrix at the model's threshold, counts written in each cell."""
    cm = np.array(metrics.confusion_matrix())
    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    # Log colour scale: the normal/normal cell is ~1000× the others and would wash them out.
    shade = np.log1p(cm)
    ax.imshow(shade, cmap="Blues")
    for (row, col), count in np.ndenumerate(cm):
        dark = shade[row, col] > shade.max() / 2
        ax.text(
            col,
            row,
            f"{count:,}",
            ha="center",
            va="center",
            fontsize=12,
            color="white" if dark else "black",
        )
    ax.set_xticks([0, 1], labels=["passed", "flagged"])
    ax.set_yticks([0, 1], labels=["normal", "fraud"])
    ax.set(xlabel="decision", ylabel="truth", title=f"{title}\nthreshold {metrics.threshold:.3g}")
    fig.tight_layout()
    return fig
