"""Prefect flow `retrain-weekly`: all labelled history → train → register → promotion gate.

Only wiring: the work is in `fraudpipe.model` (history, then `retrain`). A failed step fails the
flow run (and the Airflow task waiting on it); a re-run on unchanged data and parameters returns
the version already registered without training again.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from fraudpipe.adapters.postgres.history import read_labelled_history
from fraudpipe.config import get_settings
from fraudpipe.logs import configure_logging
from fraudpipe.model.training import TrainingConfig
from fraudpipe.retrain import RetrainOutcome, retrain


# No caching: the inputs are a whole frame (slow to hash) and every run must see today's data.
@task(name="load-labelled-history", cache_policy=NO_CACHE)
def load_history() -> pd.DataFrame:
    history = read_labelled_history(get_settings())
    get_run_logger().info(
        "labelled history: %d rows, %d frauds", len(history), int(history["label"].sum())
    )
    return history


@task(name="train-register-gate", cache_policy=NO_CACHE)
def train_register_gate(history: pd.DataFrame, config: TrainingConfig) -> RetrainOutcome:
    logger = get_run_logger()

    def report(what: str, done: int, total: int) -> None:
        logger.info("%d/%d %s", done, total, what)

    return retrain(history, config, get_settings(), on_progress=report)


@flow(name="retrain-weekly")
def retrain_weekly(
    model: Literal["logreg", "hgb"] = "logreg",
    sample: float | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """Retrain on every labelled transaction and let the gate decide on `champion`.

    Args:
        model: `logreg` (default) or the `hgb` challenger.
        sample: Train on this stratified fraction of the training window (holdout untouched).
        seed: Seed of every random draw.

    Returns:
        The registered version, the alias it got, why, and the holdout metrics.
    """
    configure_logging(json=True)
    settings = get_settings()
    config = TrainingConfig(
        model=model, seed=seed, holdout_days=settings.holdout_days, train_sample=sample
    )
    outcome = train_register_gate(load_history(), config)
    registered = outcome.registered
    summary = {
        "model_name": registered.name,
        "version": registered.version,
        "alias": registered.alias,
        "reason": registered.reason,
        "newly_registered": registered.newly_registered,
        "holdout": registered.holdout,
    }
    get_run_logger().info("retrain-weekly: %s", summary)
    return summary


if __name__ == "__main__":
    retrain_weekly()
