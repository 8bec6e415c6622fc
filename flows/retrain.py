"""Prefect flow `retrain-weekly`: labelled history as of a cut → train → register → gate.

Only wiring: the work is in `fraudpipe.model` (history, then `retrain`). A failed step fails the
flow run (and the Airflow task waiting on it). The history is read as of the `cut`
(`fraudpipe.model.point_in_time`), so a re-run for the same cut trains on the same rows and
returns the version already registered without training again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from fraudpipe.adapters.postgres.history import read_labelled_history
from fraudpipe.config import get_settings
from fraudpipe.logs import configure_logging
from fraudpipe.model.point_in_time import LabelCut
from fraudpipe.model.thresholds import rule_from
from fraudpipe.model.training import TrainingConfig
from fraudpipe.retrain import RetrainOutcome, retrain


# No caching: the inputs are a whole frame (slow to hash) and every run must see today's data.
@task(name="load-labelled-history", cache_policy=NO_CACHE)
def load_history(cut: LabelCut) -> pd.DataFrame:
    history = read_labelled_history(get_settings(), cut)
    get_run_logger().info(
        "labelled history as of %s (events before %s): %d rows, %d frauds",
        cut.cut.isoformat(),
        cut.mature_before.isoformat(),
        len(history),
        int(history["label"].sum()),
    )
    return history


@task(name="train-register-gate", cache_policy=NO_CACHE)
def train_register_gate(
    history: pd.DataFrame, config: TrainingConfig, cut: LabelCut
) -> RetrainOutcome:
    logger = get_run_logger()

    def report(what: str, done: int, total: int) -> None:
        logger.info("%d/%d %s", done, total, what)

    return retrain(history, config, get_settings(), on_progress=report, cut=cut)


@flow(name="retrain-weekly")
def retrain_weekly(
    model: Literal["logreg", "hgb"] = "logreg",
    sample: float | None = None,
    seed: int = 42,
    cut: datetime | None = None,
) -> dict[str, Any]:
    """Retrain on what was known at `cut` and let the gate decide on `champion`.

    Args:
        model: `logreg` (default) or the `hgb` challenger.
        sample: Train on this stratified fraction of the training window (holdout untouched).
        seed: Seed of every random draw.
        cut: Train as of this moment (timezone-aware): the Airflow run's data-interval end.
            None: now.

    Returns:
        The registered version, the alias it got, why, and the holdout metrics.
    """
    configure_logging(json=True)
    settings = get_settings()
    config = TrainingConfig(
        model=model,
        seed=seed,
        holdout_days=settings.holdout_days,
        train_sample=sample,
        threshold_rule=rule_from(settings),
    )
    delay = timedelta(days=settings.label_delay_days)
    as_of = LabelCut(cut, delay) if cut is not None else LabelCut.now(delay)
    outcome = train_register_gate(load_history(as_of), config, as_of)
    registered = outcome.registered
    summary = {
        "model_name": registered.name,
        "version": registered.version,
        "alias": registered.alias,
        "reason": registered.reason,
        "newly_registered": registered.newly_registered,
        "holdout": registered.holdout,
        **as_of.as_params(),
    }
    get_run_logger().info("retrain-weekly: %s", summary)
    return summary


if __name__ == "__main__":
    retrain_weekly()
