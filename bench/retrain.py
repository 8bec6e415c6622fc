"""Retraining on the full ULB data: holdout numbers and training time, next to the ceilings.

Split: train on 2025-09-20 (144,786 rows, 281 frauds), hold out 2025-09-21 (140,021 rows,
211 frauds) — `holdout_days=1`, the setting the weekly flow uses. For each model kind:

- `train_model` as the weekly flow runs it: time-ordered search over the default grid, then the
  final fit on the whole training window, then the holdout metrics;
- the training ceiling, measured in the same run: the chosen classifier alone, fitted once on the
  already-transformed numpy matrix (no pipeline, no search) — the least any training of this
  model on this window can cost;
- scoring the holdout through the logged pipeline (DataFrame in, as the scorer calls it) next to
  the bare classifier on a ready numpy matrix;
- the hour-of-day ablation: the chosen candidate refitted with the hour features flipped, scored on
  the holdout. Reported for the record only; the search chooses hour on/off by validation.

Run: `uv run python bench/retrain.py [--models logreg,hgb]` (downloads the ULB file once if it is
not cached; needs no service; writes nothing). Every timing runs under the training config's
OpenMP thread budget (`TrainingConfig.threads`, 1 by default): on a busy shared machine,
boosting's OpenMP threads otherwise wait on each other whenever one is descheduled.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.base import clone
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.config import get_settings
from fraudpipe.data.ulb import ensure_ulb_csv
from fraudpipe.model.evaluation import evaluate_scores
from fraudpipe.model.training import (
    TrainingConfig,
    TrainingResult,
    canonical_order,
    downsample_normals,
    fit_candidate,
    fraud_scores,
    split_holdout,
    train_model,
)
from fraudpipe.retrain.ulb_history import history_from_ulb_csv

# Piped output gets a wide table instead of truncated cells.
console = Console(width=None if sys.stdout.isatty() else 150)


def bare_fit_seconds(result: TrainingResult, train_x: np.ndarray, train_y: np.ndarray) -> float:
    classifier = clone(result.pipeline.named_steps["classifier"])
    rows = np.arange(len(train_y))
    if result.chosen.imbalance == "downsample":
        rows = downsample_normals(train_y, result.config.normals_per_fraud, result.config.seed)
    # Same thread budget as train_model, or the ceiling measures OpenMP contention instead.
    with threadpool_limits(limits=result.config.threads, user_api="openmp"):
        started = time.perf_counter()
        classifier.fit(train_x[rows], train_y[rows])
        return time.perf_counter() - started


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="logreg,hgb")
    args = parser.parse_args()

    history = history_from_ulb_csv(ensure_ulb_csv(get_settings()))
    train, holdout = split_holdout(canonical_order(history), holdout_days=1)
    console.print(
        f"ULB: train {len(train):,} rows ({int(train[LABEL_COLUMN].sum())} frauds), holdout "
        f"{len(holdout):,} rows ({int(holdout[LABEL_COLUMN].sum())} frauds); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )

    quality = Table(title="holdout 2025-09-21 (never seen by training or the search)")
    for col in ("model", "chosen", "AP", "ROC AUC", "R@0.1%FPR", "R@1%FPR", "P@100", "Brier"):
        quality.add_column(col, justify="left" if col in ("model", "chosen") else "right")
    quality.add_column("threshold → tn / fp / fn / tp")
    timing = Table(title="training time on the full training window (seconds)")
    for col in ("model", "fits", "search", "final fit", "total", "ceiling: bare fit"):
        timing.add_column(col, justify="left" if col == "model" else "right")
    scoring = Table(title="scoring the holdout (rows/s)")
    for col in ("model", "pipeline on DataFrame", "ceiling: bare classifier on ndarray"):
        scoring.add_column(col, justify="left" if col == "model" else "right")
    ablation = Table(title="hour-of-day ablation (chosen candidate, holdout AP)")
    for col in ("model", "hour on", "hour off", "search chose"):
        ablation.add_column(col, justify="left" if col == "model" else "right")

    for kind in args.models.split(","):
        config = TrainingConfig(model=kind)
        total = len(config.search_grid()) * config.validation_folds
        console.print(f"{kind}: searching {total} fits ...")
        started = time.perf_counter()
        result = train_model(history, config)
        wall = time.perf_counter() - started
        m, c = result.holdout_metrics, result.chosen

        quality.add_row(
            kind,
            f"{c.imbalance}, hour {'on' if c.use_hour else 'off'}, {c.strength:g}",
            f"{m.average_precision:.4f}",
            f"{m.roc_auc:.4f}",
            f"{m.recall_at_0_1pct_fpr:.4f}",
            f"{m.recall_at_1pct_fpr:.4f}",
            f"{m.precision_at_100:.2f}",
            f"{m.brier:.5f}",
            f"{m.threshold:.3g} → {m.true_negatives:,} / {m.false_positives} / "
            f"{m.false_negatives} / {m.true_positives}",
        )

        features = result.pipeline.named_steps["features"]
        train_x = features.transform(train[MODEL_INPUT_COLUMNS])
        train_y = train[LABEL_COLUMN].to_numpy(dtype=np.int64)
        timing.add_row(
            kind,
            str(total + 1),
            f"{result.search_seconds:.1f}",
            f"{result.fit_seconds:.2f}",
            f"{wall:.1f}",
            f"{bare_fit_seconds(result, train_x, train_y):.2f}",
        )

        with threadpool_limits(limits=config.threads, user_api="openmp"):
            started = time.perf_counter()
            fraud_scores(result.pipeline, holdout)
            pipeline_s = time.perf_counter() - started
            holdout_x = features.transform(holdout[MODEL_INPUT_COLUMNS])
            started = time.perf_counter()
            result.pipeline.named_steps["classifier"].predict_proba(holdout_x)
            bare_s = time.perf_counter() - started
        scoring.add_row(kind, rate(len(holdout), pipeline_s), rate(len(holdout), bare_s))

        flipped = replace(c, use_hour=not c.use_hour)
        flipped_scores = fraud_scores(fit_candidate(train, flipped, config), holdout)
        flipped_ap = evaluate_scores(
            holdout[LABEL_COLUMN].to_numpy(), flipped_scores, result.threshold
        ).average_precision
        on, off = (
            (m.average_precision, flipped_ap) if c.use_hour else (flipped_ap, m.average_precision)
        )
        ablation.add_row(kind, f"{on:.4f}", f"{off:.4f}", "on" if c.use_hour else "off")
        # Printed after every model: a slow challenger must not hide the numbers already taken.
        for table in (quality, timing, scoring, ablation):
            console.print(table)
    console.print(f"load average {os.getloadavg()[0]:.1f} at the end (2 cores are shared)")


if __name__ == "__main__":
    main()
