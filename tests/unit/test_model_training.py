"""Training on small synthetic days: time-honest split, behaviour, order-invariance, seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_frames import normal_and_fraud_rows, synthetic_history

from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.errors import ConfigurationError, TrainingDataError
from fraudpipe.model.drift import PROFILED, SCORE
from fraudpipe.model.features import MS_PER_DAY
from fraudpipe.model.thresholds import ThresholdRule
from fraudpipe.model.training import (
    Candidate,
    TrainingConfig,
    TrainingResult,
    downsample_normals,
    split_holdout,
    stratified_sample,
    train_model,
)

pytestmark = pytest.mark.unit

SMALL_GRID = (
    Candidate("none", False, 1.0),
    Candidate("class_weight", False, 0.1),
    Candidate("downsample", True, 0.1),
)


def config(**overrides: object) -> TrainingConfig:
    fields: dict[str, object] = {"candidates": SMALL_GRID, "normals_per_fraud": 20}
    return TrainingConfig(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return synthetic_history(days=3, rows_per_day=2500, seed=11)


@pytest.fixture(scope="module")
def trained(history: pd.DataFrame) -> TrainingResult:
    return train_model(history, config())


def test_holdout_is_the_last_calendar_day_and_strictly_later(history: pd.DataFrame) -> None:
    train, holdout = split_holdout(history, holdout_days=1)
    days = history["event_time"] // MS_PER_DAY
    assert len(holdout) == int((days == days.max()).sum())
    assert train["event_time"].max() < holdout["event_time"].min()
    assert len(train) + len(holdout) == len(history)


def test_holdout_needs_a_training_day_too(history: pd.DataFrame) -> None:
    with pytest.raises(TrainingDataError, match="3 day"):
        split_holdout(history, holdout_days=3)


def test_stratified_sample_keeps_class_shares_and_time_order() -> None:
    labels = np.array([0] * 900 + [1] * 100)
    rows = stratified_sample(labels, 0.1, seed=1)
    assert (labels[rows] == 1).sum() == 10 and (labels[rows] == 0).sum() == 90
    assert np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, stratified_sample(labels, 0.1, seed=1))


def test_downsampling_keeps_every_fraud() -> None:
    labels = np.array([0] * 5000 + [1] * 7)
    rows = downsample_normals(labels, normals_per_fraud=10, seed=0)
    assert (labels[rows] == 1).sum() == 7
    assert (labels[rows] == 0).sum() == 70


def test_known_fraud_pattern_scores_higher_than_a_normal_row(trained: TrainingResult) -> None:
    result = trained
    normal, fraud = result.pipeline.predict_proba(normal_and_fraud_rows())[:, 1]
    assert fraud > normal
    assert fraud >= result.threshold > normal


def test_model_ranks_the_holdout_far_better_than_chance(trained: TrainingResult) -> None:
    m = trained.holdout_metrics
    assert m.average_precision > 5 * m.frauds / m.rows
    assert m.roc_auc > 0.8
    assert m.true_positives > 0


def test_scores_do_not_depend_on_row_order(trained: TrainingResult) -> None:
    result = trained
    holdout = result.holdout[MODEL_INPUT_COLUMNS]
    order = np.random.default_rng(5).permutation(len(holdout))
    shuffled_scores = result.pipeline.predict_proba(holdout.iloc[order])[:, 1]
    np.testing.assert_array_equal(shuffled_scores, result.holdout_scores[order])


def test_training_does_not_depend_on_the_order_rows_arrive_in(
    history: pd.DataFrame, trained: TrainingResult
) -> None:
    shuffled = history.sample(frac=1.0, random_state=3)
    a, b = trained, train_model(shuffled, config())
    assert a.fingerprint == b.fingerprint
    assert a.holdout_metrics == b.holdout_metrics


def test_same_data_and_seed_give_the_same_model(
    history: pd.DataFrame, trained: TrainingResult
) -> None:
    a, b = trained, train_model(history, config())
    assert a.holdout_metrics == b.holdout_metrics
    assert a.threshold == b.threshold
    assert a.chosen == b.chosen


def test_the_seed_drives_downsampling(history: pd.DataFrame) -> None:
    only_downsample = (Candidate("downsample", False, 0.1),)
    a = train_model(history, config(candidates=only_downsample, seed=1))
    b = train_model(history, config(candidates=only_downsample, seed=2))
    assert a.fingerprint != b.fingerprint
    assert not np.array_equal(a.holdout_scores, b.holdout_scores)


def test_the_search_picks_the_best_validation_score_not_the_holdout(
    trained: TrainingResult,
) -> None:
    result = trained
    best = max(result.search, key=lambda s: s.mean_average_precision)
    assert result.chosen == best.candidate
    assert len(result.search) == len(SMALL_GRID)
    assert all(len(s.fold_average_precision) == 3 for s in result.search)


def test_a_training_sample_never_touches_the_holdout(
    history: pd.DataFrame, trained: TrainingResult
) -> None:
    full = trained
    sampled = train_model(history, config(train_sample=0.5))
    assert sampled.holdout_window == full.holdout_window
    assert sampled.train_window.rows == pytest.approx(full.train_window.rows / 2, abs=2)


@pytest.mark.parametrize("per_day", [5, 40])
def test_a_review_budget_caps_the_holdout_alerts_and_changes_nothing_else(
    history: pd.DataFrame, trained: TrainingResult, per_day: int
) -> None:
    budgeted = train_model(history, config(threshold_rule=ThresholdRule("budget", per_day)))
    flagged = int((budgeted.holdout_scores >= budgeted.threshold).sum())
    assert 0 < flagged <= per_day * budgeted.config.holdout_days
    m = budgeted.holdout_metrics
    assert m.true_positives + m.false_positives == flagged
    # The rule moves the threshold only: the same model, the same ranking.
    np.testing.assert_array_equal(budgeted.holdout_scores, trained.holdout_scores)
    assert budgeted.fingerprint != trained.fingerprint


def test_the_tradeoff_curve_is_kept_with_the_result(trained: TrainingResult) -> None:
    curve = trained.tradeoff
    assert list(curve.columns) == ["threshold", "alerts_per_day", "recall", "precision"]
    assert curve["recall"].iat[-1] == 1.0
    assert curve["alerts_per_day"].iat[-1] == len(trained.holdout)


def test_hgb_challenger_trains_through_the_same_path(history: pd.DataFrame) -> None:
    grid = (Candidate("none", True, 0.1),)
    result = train_model(history, config(model="hgb", candidates=grid, hgb_max_iter=30))
    assert type(result.pipeline[-1]).__name__ == "HistGradientBoostingClassifier"
    assert result.holdout_metrics.roc_auc > 0.8


def test_boosting_gives_the_same_model_on_one_thread_or_two() -> None:
    small = synthetic_history(days=2, rows_per_day=2000, fraud_rate=0.04, seed=6)
    grid = (Candidate("none", False, 0.1),)
    one, two = (
        train_model(small, config(model="hgb", candidates=grid, hgb_max_iter=8, threads=n))
        for n in (1, 2)
    )
    # Thread count is left out of the fingerprint because it cannot change the model.
    assert one.fingerprint == two.fingerprint
    np.testing.assert_array_equal(one.holdout_scores, two.holdout_scores)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("amount", -1.0, "amount"),
        ("v3", np.nan, "v3"),
        ("v5", np.inf, "v5"),
        (LABEL_COLUMN, 2, "label"),
    ],
)
def test_bad_rows_are_refused_before_any_fit(
    history: pd.DataFrame, column: str, value: float, reason: str
) -> None:
    bad = history.copy()
    bad[column] = bad[column].astype("float64") if column == LABEL_COLUMN else bad[column]
    bad.loc[5, column] = value
    if column == LABEL_COLUMN:
        bad[column] = bad[column].astype("int64")
    with pytest.raises(TrainingDataError, match=reason):
        train_model(bad, config())


def test_a_training_window_without_fraud_is_refused(history: pd.DataFrame) -> None:
    no_fraud = history.copy()
    last_day = no_fraud["event_time"] // MS_PER_DAY == (no_fraud["event_time"] // MS_PER_DAY).max()
    no_fraud.loc[~last_day, LABEL_COLUMN] = 0
    with pytest.raises(TrainingDataError, match="no fraud"):
        train_model(no_fraud, config())


@pytest.mark.parametrize(
    "bad",
    [
        {"train_sample": 0.0},
        {"validation_folds": 1},
        {"holdout_days": 0},
        {"candidates": ()},
        {"threads": 0},
    ],
)
def test_a_bad_config_is_refused_up_front(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(bad))):
        TrainingConfig(**bad)  # type: ignore[arg-type]


def test_the_reference_profile_is_the_training_window_and_its_scores(
    trained: TrainingResult,
) -> None:
    assert trained.reference is not None
    assert [c.name for c in trained.reference.columns] == [*PROFILED, SCORE]
    # The holdout is a later day of the same population: close to the reference.
    psi = trained.reference.psi(
        {c: trained.holdout[c].to_numpy() for c in MODEL_INPUT_COLUMNS}, trained.holdout_scores
    )
    assert max(psi.values()) < 0.05
