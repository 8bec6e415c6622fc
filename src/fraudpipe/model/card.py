"""A short model card (markdown) logged with every training run."""

from __future__ import annotations

from datetime import timedelta

from fraudpipe.model.training import (
    VALIDATION_SCHEME,
    DataWindow,
    TrainingResult,
)

_MODEL_NAMES = {
    "logreg": "logistic regression (lbfgs)",
    "hgb": "histogram gradient boosting",
}
_STRENGTH_NAMES = {"logreg": "C", "hgb": "learning_rate"}


def _known(result: TrainingResult) -> str:
    cut = result.cut
    if cut is None:
        return "Labels: every label stored when the history was read."
    days = cut.label_delay / timedelta(days=1)
    return (
        f"Point in time: as of {cut.cut:%Y-%m-%d %H:%M} UTC, events before "
        f"{cut.mature_before:%Y-%m-%d %H:%M} UTC (labels {days:g} day(s) old or more), each with "
        "its latest label known at the cut."
    )


def _window(window: DataWindow) -> str:
    share = window.frauds / window.rows if window.rows else 0.0
    return (
        f"{window.start:%Y-%m-%d %H:%M:%S} → {window.end:%Y-%m-%d %H:%M:%S} UTC, "
        f"{window.rows:,} rows, {window.frauds:,} frauds ({share:.3%})"
    )


def render_model_card(result: TrainingResult, model_name: str) -> str:
    """Markdown describing what was trained, on what, how it was chosen and how it scored."""
    cfg, chosen, m = result.config, result.chosen, result.holdout_metrics
    ranked = sorted(result.search, key=lambda s: s.mean_average_precision, reverse=True)
    search_rows = "\n".join(
        f"| {s.candidate.imbalance} | {'on' if s.candidate.use_hour else 'off'} "
        f"| {s.candidate.strength:g} | {s.mean_average_precision:.4f} "
        f"| {' / '.join(f'{ap:.3f}' for ap in s.fold_average_precision)} |"
        for s in ranked[:8]
    )
    sample = f"{cfg.train_sample:g} stratified sample" if cfg.train_sample else "all rows"
    calibration = (
        "Scores are calibrated probabilities (no reweighting)."
        if chosen.imbalance == "none"
        else "Scores over-state the fraud probability (the model was trained on "
        f"{'reweighted' if chosen.imbalance == 'class_weight' else 'downsampled'} data); "
        "use them to rank and with the threshold, not as calibrated probabilities."
    )
    return f"""# {model_name}: {_MODEL_NAMES[cfg.model]}

**Use**: score card transactions for fraud; flag when `score >= {result.threshold:.6g}`.
Input: a DataFrame with `event_time` (int64 epoch ms, UTC), `amount`, `v1`..`v28` (float64).
Preprocessing (log-amount and scaling{", cyclic hour of day" if chosen.use_hour else ""}) is
inside the logged pipeline; the `fraudpipe` package must be importable where it is loaded.

## Data
- Training window: {_window(result.train_window)}; {sample}.
- Holdout (latest {cfg.holdout_days} day(s) of event time, never seen by training or the
  search): {_window(result.holdout_window)}.
- {_known(result)}
- Training fingerprint: `{result.fingerprint[:16]}`; training set digest
  `{result.training_set_digest[:16]}`.

## How it was chosen
- Validation: {VALIDATION_SCHEME}, {cfg.validation_folds} folds. Time order because the model
  always scores transactions later than those it learned from; shuffled folds would let it
  peek at the future and overstate quality. The holdout played no part in any choice.
- Search: class imbalance (none / class_weight=balanced / downsample to
  {cfg.normals_per_fraud} normals per fraud, all frauds kept) × hour of day (on/off) ×
  {_STRENGTH_NAMES[cfg.model]}; best mean validation average precision wins.
- Chosen: imbalance **{chosen.imbalance}**, hour of day **{"on" if chosen.use_hour else "off"}**,
  {_STRENGTH_NAMES[cfg.model]} **{chosen.strength:g}**, seed {cfg.seed}.
- Threshold rule: {result.config.threshold_rule.describe()}.

| imbalance | hour | {_STRENGTH_NAMES[cfg.model]} | mean AP | AP per fold |
|---|---|---|---|---|
{search_rows}

## Holdout
| metric | value |
|---|---|
| average precision | {m.average_precision:.4f} |
| ROC AUC | {m.roc_auc:.4f} |
| recall @ 0.1% FPR | {m.recall_at_0_1pct_fpr:.4f} |
| recall @ 1% FPR | {m.recall_at_1pct_fpr:.4f} |
| precision @ 100 | {m.precision_at_100:.4f} |
| Brier score | {m.brier:.6f} |
| at threshold: precision / recall / F1 | {m.precision:.4f} / {m.recall:.4f} / {m.f1:.4f} |
| confusion [[tn, fp], [fn, tp]] | {m.confusion_matrix()} |

## Caveats
- {calibration}
- V1..V28 are anonymised PCA components: no feature can be explained to a card holder.
- Promotion to `champion` happens only through the gate (see the version's `promotion_*` tags).
"""
