"""Log one training to MLflow as a run: parameters, metrics, plots, model card, and the model."""

from __future__ import annotations

import warnings
from importlib.metadata import version as package_version
from typing import Final

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.model.card import render_model_card
from fraudpipe.model.coefficients import COEFFICIENTS_ARTIFACT, as_artifact, linear_coefficients
from fraudpipe.model.features import TRUSTED_CALLABLES
from fraudpipe.model.plots import confusion_matrix_figure, pr_curve_figure, roc_curve_figure
from fraudpipe.model.training import VALIDATION_SCHEME, TrainingResult
from fraudpipe.model.trust import reference_of

MODEL_ARTIFACT: Final = "model"
#: Alerts a day against recall and precision on the holdout, at many thresholds.
TRADEOFF_ARTIFACT: Final = "evaluation/alert_tradeoff.csv"
#: The training rows' binned inputs and scores, the bar drift is measured against.
REFERENCE_ARTIFACT: Final = "drift/reference_profile.json"

# skops loads only types it is told to trust; these are ours plus sklearn's tree predictor.
SKOPS_TRUSTED_TYPES: Final = [
    *TRUSTED_CALLABLES,
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]


def _experiment_id(client: MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return str(client.create_experiment(name))
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def _run_params(result: TrainingResult) -> dict[str, str | int | float | bool | None]:
    cfg, chosen = result.config, result.chosen
    return {
        "model_kind": cfg.model,
        "seed": cfg.seed,
        "holdout_days": cfg.holdout_days,
        "validation_scheme": VALIDATION_SCHEME,
        "validation_folds": cfg.validation_folds,
        "search_candidates": len(result.search),
        "imbalance": chosen.imbalance,
        "use_hour": chosen.use_hour,
        "C" if cfg.model == "logreg" else "learning_rate": chosen.strength,
        "normals_per_fraud": cfg.normals_per_fraud,
        "train_sample": cfg.train_sample,
        "hgb_max_iter": cfg.hgb_max_iter if cfg.model == "hgb" else None,
        "threshold_rule": result.config.threshold_rule.describe(),
        "threshold_kind": result.config.threshold_rule.kind,
        "alert_budget_per_day": result.config.threshold_rule.alerts_per_day,
        "review_cost": result.config.threshold_rule.review_cost,
        "train_start": result.train_window.start.isoformat(),
        "train_end": result.train_window.end.isoformat(),
        "holdout_start": result.holdout_window.start.isoformat(),
        "holdout_end": result.holdout_window.end.isoformat(),
        "training_fingerprint": result.fingerprint,
        "training_set_digest": result.training_set_digest,
        **(result.cut.as_params() if result.cut is not None else {}),
    }


def _run_metrics(result: TrainingResult) -> dict[str, float]:
    best = max(s.mean_average_precision for s in result.search)
    return {
        **{f"holdout_{k}": v for k, v in result.holdout_metrics.as_dict().items()},
        "validation_average_precision": best,
        "train_rows": result.train_window.rows,
        "train_frauds": result.train_window.frauds,
        "holdout_rows": result.holdout_window.rows,
        "holdout_frauds": result.holdout_window.frauds,
        "search_seconds": result.search_seconds,
        "fit_seconds": result.fit_seconds,
    }


def _search_table(result: TrainingResult) -> str:
    rows = [
        {
            "imbalance": s.candidate.imbalance,
            "use_hour": s.candidate.use_hour,
            "strength": s.candidate.strength,
            "mean_average_precision": s.mean_average_precision,
            **{f"fold_{i}": ap for i, ap in enumerate(s.fold_average_precision)},
        }
        for s in result.search
    ]
    return pd.DataFrame(rows).to_csv(index=False)


def log_training_run(
    client: MlflowClient, result: TrainingResult, settings: Settings
) -> tuple[str, str]:
    """Log one training as an MLflow run: params, metrics, plots, card, and the model.

    The run goes to the experiment named like the registered model. The model is saved with
    skops (safe loading), a signature, an input example, and in the MLmodel metadata its
    threshold and its reference frame (`fraudpipe.model.trust`).

    Returns:
        ``(run_id, model_uri)``; the model is not registered yet.
    """
    labels = result.holdout[LABEL_COLUMN].to_numpy()
    metrics = result.holdout_metrics
    title = f"{settings.model_name} ({result.config.model}) on holdout"
    example = result.holdout[MODEL_INPUT_COLUMNS].head(5)
    experiment_id = _experiment_id(client, settings.model_name)
    run_name = f"{result.config.model}-{result.fingerprint[:8]}"
    with (
        mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run,
        warnings.catch_warnings(),
    ):
        # event_time is int64 by contract and never missing, which is what this hint is about.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        mlflow.set_tag("training_fingerprint", result.fingerprint)
        mlflow.log_params(_run_params(result))
        mlflow.log_metrics(_run_metrics(result))
        mlflow.log_figure(
            pr_curve_figure(labels, result.holdout_scores, metrics, title), "plots/pr_curve.png"
        )
        mlflow.log_figure(
            roc_curve_figure(labels, result.holdout_scores, metrics, title), "plots/roc_curve.png"
        )
        mlflow.log_figure(confusion_matrix_figure(metrics, title), "plots/confusion_matrix.png")
        mlflow.log_dict(
            {
                "labels": ["normal", "fraud"],
                "threshold": result.threshold,
                "matrix": metrics.confusion_matrix(),
            },
            "evaluation/confusion_matrix.json",
        )
        mlflow.log_dict(metrics.as_dict(), "evaluation/holdout_metrics.json")
        coefficients = linear_coefficients(result.pipeline)
        if coefficients is not None:
            mlflow.log_dict(as_artifact(coefficients), COEFFICIENTS_ARTIFACT)
        mlflow.log_text(_search_table(result), "evaluation/search.csv")
        mlflow.log_text(result.tradeoff.to_csv(index=False), TRADEOFF_ARTIFACT)
        if result.reference is not None:
            mlflow.log_dict(result.reference.as_dict(), REFERENCE_ARTIFACT)
        mlflow.log_text(render_model_card(result, settings.model_name), "model_card.md")
        info = mlflow.sklearn.log_model(
            result.pipeline,
            name=MODEL_ARTIFACT,
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            signature=infer_signature(example, result.pipeline.predict_proba(example)),
            input_example=example,
            pyfunc_predict_fn="predict_proba",
            # The threshold travels inside the model, so whoever loads it cannot pair a model
            # with another version's threshold.
            metadata={
                "threshold": result.threshold,
                "threshold_rule": result.config.threshold_rule.describe(),
                "model_input_columns": MODEL_INPUT_COLUMNS,
                "training_fingerprint": result.fingerprint,
                # Checked before the version may serve (fraudpipe.model.trust).
                **reference_of(result.holdout, result.holdout_scores).as_metadata(),
            },
            # Pinned explicitly: inferring them would load the model in a subprocess.
            pip_requirements=[
                f"scikit-learn=={package_version('scikit-learn')}",
                f"skops=={package_version('skops')}",
                f"pandas=={package_version('pandas')}",
                "fraudpipe",
            ],
        )
    return run.info.run_id, info.model_uri


def version_tags(result: TrainingResult) -> dict[str, str]:
    """Registered-version tags: fingerprint, threshold and headline holdout metrics (strings)."""
    m, rule = result.holdout_metrics, result.config.threshold_rule
    return {
        "training_fingerprint": result.fingerprint,
        "training_set_digest": result.training_set_digest,
        "model_kind": result.config.model,
        "threshold": repr(result.threshold),
        "imbalance": result.chosen.imbalance,
        "use_hour": str(result.chosen.use_hour).lower(),
        "holdout_start": result.holdout_window.start.isoformat(),
        "holdout_end": result.holdout_window.end.isoformat(),
        "holdout_average_precision": repr(m.average_precision),
        "holdout_roc_auc": repr(m.roc_auc),
        "holdout_recall_at_1pct_fpr": repr(m.recall_at_1pct_fpr),
        "holdout_precision_at_100": repr(m.precision_at_100),
        "threshold_rule": rule.describe(),
        **({"alert_budget_per_day": str(rule.alerts_per_day)} if rule.kind == "budget" else {}),
        **({"label_cut": result.cut.cut.isoformat()} if result.cut is not None else {}),
    }
