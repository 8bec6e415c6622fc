"""Retraining against the real MLflow server: logging, registry, promotion gate, serving load.

Each test registers under its own model name (and experiment of the same name) and deletes
both afterwards. Data: every fraud of the real ULB file plus 8% of its normals (day 1 trains,
day 2 is the holdout), so each training takes seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import Model
from model_frames import ulb_slice

from fraudpipe.adapters.mlflow.registry import (
    current_serving_version,
    delete_registered_model,
    list_versions,
    load_serving_model,
    register_and_gate,
)
from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.errors import NoServingModelError
from fraudpipe.model.drift import ReferenceProfile
from fraudpipe.model.training import Candidate, TrainingConfig, TrainingResult, train_model

pytestmark = pytest.mark.integration

GRID = (Candidate("class_weight", False, 0.1), Candidate("downsample", False, 0.01))
GOOD = TrainingConfig(candidates=GRID, normals_per_fraud=20)
# Deliberately worse: 4% of the training window, one candidate, two folds.
TINY = TrainingConfig(
    candidates=(Candidate("none", True, 1.0),), train_sample=0.04, validation_folds=2
)


@pytest.fixture(scope="module")
def history(ulb_csv: Path) -> pd.DataFrame:
    return ulb_slice(ulb_csv)


@pytest.fixture(scope="module")
def good(history: pd.DataFrame) -> TrainingResult:
    return train_model(history, GOOD)


@pytest.fixture(scope="module")
def tiny(history: pd.DataFrame) -> TrainingResult:
    return train_model(history, TINY)


@pytest.fixture
def settings_for_test(stack: Settings, unique: str) -> Iterator[Settings]:
    """Settings naming a registered model and experiment of this test's own."""
    settings = stack.model_copy(update={"model_name": f"fraud-detector-test-{unique}"})
    yield settings
    delete_registered_model(settings)


def test_a_training_run_registers_a_version_with_metrics_and_artifacts(
    settings_for_test: Settings, good: TrainingResult
) -> None:
    registered = register_and_gate(good, settings_for_test)

    assert (registered.version, registered.alias, registered.newly_registered) == (
        1,
        "champion",
        True,
    )
    client = MlflowClient(tracking_uri=settings_for_test.mlflow_tracking_uri)
    run = client.get_run(registered.run_id)
    for name, value in good.holdout_metrics.as_dict().items():
        assert run.data.metrics[f"holdout_{name}"] == pytest.approx(value)
    assert run.data.metrics["train_frauds"] == good.train_window.frauds
    assert run.data.metrics["holdout_rows"] == good.holdout_window.rows
    assert run.data.params["imbalance"] == good.chosen.imbalance
    assert run.data.params["holdout_start"] == good.holdout_window.start.isoformat()
    assert run.data.params["train_end"] < run.data.params["holdout_start"]

    artifacts = {
        a.path
        for folder in ("", "plots", "evaluation", "drift")
        for a in client.list_artifacts(registered.run_id, folder or None)
    }
    assert {
        "drift/reference_profile.json",
        "plots/pr_curve.png",
        "plots/roc_curve.png",
        "plots/confusion_matrix.png",
        "evaluation/confusion_matrix.json",
        "evaluation/holdout_metrics.json",
        "evaluation/search.csv",
        "model_card.md",
        "promotion.json",
    } <= artifacts
    profile = ReferenceProfile.from_dict(
        mlflow.artifacts.load_dict(f"runs:/{registered.run_id}/drift/reference_profile.json")
    )
    assert profile == good.reference
    card = mlflow.artifacts.load_text(f"runs:/{registered.run_id}/model_card.md")
    assert "TimeSeriesSplit" in card and f"{good.holdout_metrics.average_precision:.4f}" in card

    version = client.get_model_version(settings_for_test.model_name, "1")
    assert float(version.tags["threshold"]) == good.threshold
    assert version.tags["promotion_decision"] == "champion"
    assert version.tags["training_fingerprint"] == good.fingerprint
    model = Model.load(f"models:/{settings_for_test.model_name}/1")
    assert model.metadata is not None and model.metadata["threshold"] == good.threshold
    assert model.signature is not None
    assert model.signature.inputs.input_names() == MODEL_INPUT_COLUMNS
    assert model.saved_input_example_info is not None


def test_a_worse_model_does_not_move_the_champion(
    settings_for_test: Settings, good: TrainingResult, tiny: TrainingResult
) -> None:
    assert tiny.holdout_metrics.average_precision < good.holdout_metrics.average_precision
    register_and_gate(good, settings_for_test)

    worse = register_and_gate(tiny, settings_for_test)

    assert (worse.version, worse.alias) == (2, "challenger")
    assert current_serving_version(settings_for_test) == 1
    tags = MlflowClient().get_model_version(settings_for_test.model_name, "2").tags
    assert tags["promotion_decision"] == "challenger"
    assert tags["promotion_champion_version"] == "1"
    # The champion was re-scored on the candidate's holdout: the same holdout it was evaluated
    # on when it was trained, so the numbers agree exactly.
    assert float(tags["promotion_champion_average_precision"]) == pytest.approx(
        good.holdout_metrics.average_precision
    )
    assert float(tags["promotion_candidate_average_precision"]) == pytest.approx(
        tiny.holdout_metrics.average_precision
    )
    listed = {v.version: v.aliases for v in list_versions(settings_for_test)}
    assert listed == {2: ("challenger",), 1: ("champion",)}


def test_a_better_model_takes_over_the_champion_alias(
    settings_for_test: Settings, good: TrainingResult, tiny: TrainingResult
) -> None:
    first = register_and_gate(tiny, settings_for_test)
    assert first.alias == "champion"

    better = register_and_gate(good, settings_for_test)

    assert (better.version, better.alias) == (2, "champion")
    assert current_serving_version(settings_for_test) == 2
    assert better.decision is not None and "beats champion v1" in better.decision.reason
    # The displaced champion goes on in shadow, one alias move from a rollback.
    listed = {v.version: v.aliases for v in list_versions(settings_for_test)}
    assert listed == {2: ("champion",), 1: ("challenger",)}


def test_same_data_and_seed_give_the_same_metrics_and_one_version(
    settings_for_test: Settings, history: pd.DataFrame, good: TrainingResult
) -> None:
    again = train_model(history.sample(frac=1.0, random_state=1), GOOD)
    assert again.holdout_metrics == good.holdout_metrics
    assert again.fingerprint == good.fingerprint

    first = register_and_gate(good, settings_for_test)
    second = register_and_gate(again, settings_for_test)

    assert (second.version, second.newly_registered) == (first.version, False)
    assert [v.version for v in list_versions(settings_for_test)] == [first.version]


def test_the_champion_loaded_by_alias_reproduces_the_in_memory_scores(
    settings_for_test: Settings, good: TrainingResult
) -> None:
    register_and_gate(good, settings_for_test)

    serving = load_serving_model(settings_for_test)

    assert (serving.version, serving.threshold) == (1, good.threshold)
    assert serving.linear is not None  # the scorer's numpy path, held to sklearn's scores
    holdout = good.holdout
    np.testing.assert_array_equal(serving.score(holdout), good.holdout_scores)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings_for_test.model_name}@champion")
    proba = np.asarray(pyfunc.predict(holdout[MODEL_INPUT_COLUMNS]))
    np.testing.assert_array_equal(proba[:, 1], good.holdout_scores)
    flagged = serving.is_fraud(serving.score(holdout))
    assert (
        int(flagged.sum())
        == good.holdout_metrics.true_positives + good.holdout_metrics.false_positives
    )


def test_no_champion_yet_is_a_named_error(settings_for_test: Settings) -> None:
    assert current_serving_version(settings_for_test) is None
    with pytest.raises(NoServingModelError, match=settings_for_test.model_name):
        load_serving_model(settings_for_test)


def test_the_hgb_challenger_competes_through_the_same_gate(
    settings_for_test: Settings, history: pd.DataFrame, good: TrainingResult
) -> None:
    register_and_gate(good, settings_for_test)
    hgb = train_model(
        history,
        TrainingConfig(
            model="hgb",
            candidates=(Candidate("none", False, 0.1),),
            validation_folds=2,
            hgb_max_iter=25,
        ),
    )

    registered = register_and_gate(hgb, settings_for_test)

    tags = MlflowClient().get_model_version(settings_for_test.model_name, "2").tags
    assert tags["model_kind"] == "hgb"
    assert tags["promotion_decision"] == registered.alias
    assert float(tags["promotion_champion_average_precision"]) == pytest.approx(
        good.holdout_metrics.average_precision
    )
    record = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(f"runs:/{registered.run_id}/promotion.json")
        ).read_text()
    )
    assert record["promotion_decision"] == registered.alias
    assert current_serving_version(settings_for_test) == (
        2 if registered.alias == "champion" else 1
    )
    assert LABEL_COLUMN not in load_serving_model(settings_for_test).pipeline.feature_names_in_
