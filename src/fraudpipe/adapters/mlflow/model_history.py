"""MLflow reads for the Models page: versions with their holdout metrics, the champion's moves,
logged evaluation plots, the alert trade-off and what drives a logistic-regression score.

Everything goes through the registry adapter (`fraudpipe.adapters.mlflow.registry`), which raises
`ServiceUnavailableError` when the tracking server is down.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Final

import mlflow
import pandas as pd
from mlflow import MlflowClient

from fraudpipe.adapters.mlflow.principals import runs_as
from fraudpipe.adapters.mlflow.registry import (
    CHAMPION,
    list_versions,
    load_model_version,
    require_mlflow,
)
from fraudpipe.adapters.mlflow.run_logging import TRADEOFF_ARTIFACT
from fraudpipe.config import Settings
from fraudpipe.model.coefficients import COEFFICIENTS_ARTIFACT, from_artifact, linear_coefficients

HOLDOUT_METRICS: Final = [
    "holdout_average_precision",
    "holdout_roc_auc",
    "holdout_recall_at_1pct_fpr",
    "holdout_precision_at_100",
]
PLOTS_DIR: Final = "plots"
CURVE_PLOTS: Final = {"pr": "pr_curve.png", "roc": "roc_curve.png"}
VERSION_COLUMNS: Final = [
    "version",
    "created_at",
    "aliases",
    "decision",
    "reason",
    "replaced_version",
    "model_kind",
    "threshold",
    "threshold_rule",
    "alert_budget_per_day",
    "holdout_start",
    "holdout_end",
    "run_id",
    *HOLDOUT_METRICS,
]


def _float_tag(tags: dict[str, str], key: str) -> float:
    value = tags.get(key)
    return float(value) if value else float("nan")


def versions_frame(settings: Settings) -> pd.DataFrame:
    """Every registered version of ``settings.model_name``, newest first.

    Columns: version, registration time, aliases, the promotion gate's decision and reason,
    the champion it was compared with, model kind, threshold and its rule (with the review
    budget it fits, if any), holdout window, run id and the
    holdout metrics recorded on the version. Empty when nothing is registered yet.

    Raises:
        ServiceUnavailableError: MLflow is not reachable.
    """
    rows = [
        {
            "version": v.version,
            "created_at": v.created_at,
            "aliases": ", ".join(v.aliases),
            "decision": v.tags.get("promotion_decision", ""),
            "reason": v.tags.get("promotion_reason", ""),
            "replaced_version": v.tags.get("promotion_champion_version", ""),
            "model_kind": v.tags.get("model_kind", ""),
            "threshold": _float_tag(v.tags, "threshold"),
            "threshold_rule": v.tags.get("threshold_rule", ""),
            "alert_budget_per_day": _float_tag(v.tags, "alert_budget_per_day"),
            "holdout_start": v.tags.get("holdout_start", ""),
            "holdout_end": v.tags.get("holdout_end", ""),
            "run_id": v.run_id,
            **{m: _float_tag(v.tags, m) for m in HOLDOUT_METRICS},
        }
        for v in list_versions(settings)
    ]
    return pd.DataFrame(rows, columns=VERSION_COLUMNS)


def champion_history(versions: pd.DataFrame) -> pd.DataFrame:
    """When the champion alias moved: each version the gate promoted, oldest first.

    A version holds the alias from its registration (the gate runs right after it) until the
    next promoted version's registration. ``current`` marks the version holding the alias now,
    which can differ from the last promotion if someone moved the alias by hand.
    """
    columns = ["version", "champion_from", "champion_until", "replaced_version", "reason"]
    promoted = versions[versions["decision"] == CHAMPION].sort_values("created_at")
    holder = versions[versions["aliases"].str.split(", ").apply(lambda a: CHAMPION in a)]
    current = int(holder["version"].iloc[0]) if not holder.empty else None
    history = pd.DataFrame(
        {
            "version": promoted["version"].astype("int64"),
            "champion_from": promoted["created_at"],
            "champion_until": promoted["created_at"].shift(-1),
            "replaced_version": promoted["replaced_version"],
            "reason": promoted["reason"],
        },
        columns=columns,
    ).reset_index(drop=True)
    return history.assign(current=history["version"] == current)


@runs_as("reader")
def curve_plots(settings: Settings, run_id: str) -> dict[str, bytes]:
    """The PR and ROC plots the training run logged (PNG bytes by ``pr``/``roc``), if any.

    Raises:
        ServiceUnavailableError: MLflow is not reachable.
    """
    require_mlflow(settings)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    present = {Path(a.path).name for a in client.list_artifacts(run_id, PLOTS_DIR)}
    plots: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="fraudpipe-dashboard-") as tmp:
        for kind, name in CURVE_PLOTS.items():
            if name not in present:
                continue
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=f"{PLOTS_DIR}/{name}",
                dst_path=tmp,
                tracking_uri=settings.mlflow_tracking_uri,
            )
            plots[kind] = Path(local).read_bytes()
    return plots


@runs_as("reader")
def coefficients(settings: Settings, version: int) -> pd.DataFrame | None:
    """Feature names and coefficients of a logistic-regression version (None for other models).

    Read from the small JSON the training run logged; a version logged before that artifact
    existed is loaded whole instead.

    Raises:
        ServiceUnavailableError: MLflow is not reachable.
        ModelRegistryError: The version was not logged by fraudpipe.
    """
    require_mlflow(settings)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    run_id = client.get_model_version(settings.model_name, str(version)).run_id
    text = artifact_text(client, settings, run_id, COEFFICIENTS_ARTIFACT) if run_id else None
    if text is not None:
        return from_artifact(json.loads(text))
    return linear_coefficients(load_model_version(settings, version).pipeline)


@runs_as("reader")
def alert_tradeoff(settings: Settings, run_id: str) -> pd.DataFrame | None:
    """Alerts a day against recall and precision on the run's holdout (None if not logged).

    Raises:
        ServiceUnavailableError: MLflow is not reachable.
    """
    require_mlflow(settings)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    text = artifact_text(client, settings, run_id, TRADEOFF_ARTIFACT)
    return pd.read_csv(io.StringIO(text)) if text is not None else None


def artifact_text(client: MlflowClient, settings: Settings, run_id: str, path: str) -> str | None:
    """A small text artifact of a run, or None if the run did not log it."""
    folder, name = path.rsplit("/", 1)
    if name not in {Path(a.path).name for a in client.list_artifacts(run_id, folder)}:
        return None
    with tempfile.TemporaryDirectory(prefix="fraudpipe-dashboard-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=path,
            dst_path=tmp,
            tracking_uri=settings.mlflow_tracking_uri,
        )
        return Path(local).read_text()
