"""What the scorer calls: `ServingModel.score` and `is_fraud` on a small fitted pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_frames import normal_and_fraud_rows, synthetic_history

from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.errors import ModelInputError
from fraudpipe.model.serving import ServingModel
from fraudpipe.model.training import Candidate, TrainingConfig, fit_candidate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def serving() -> ServingModel:
    history = synthetic_history(days=1, rows_per_day=2000, seed=2)
    pipeline = fit_candidate(history, Candidate("none", True, 1.0), TrainingConfig())
    return ServingModel(name="fraud-detector", version=3, threshold=0.5, pipeline=pipeline)


def test_scores_are_probabilities_and_extra_columns_are_ignored(serving: ServingModel) -> None:
    frame = normal_and_fraud_rows().assign(transaction_id=["a", "b"], label=[0, 1])
    scores = serving.score(frame)
    assert scores.dtype == np.float64 and scores.shape == (2,)
    assert np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_array_equal(scores, serving.score(frame[MODEL_INPUT_COLUMNS]))
    assert list(serving.is_fraud(scores)) == [False, True]


def test_column_order_does_not_matter(serving: ServingModel) -> None:
    frame = synthetic_history(days=1, rows_per_day=50, seed=8).drop(columns=LABEL_COLUMN)
    reordered = frame[list(reversed(frame.columns))]
    np.testing.assert_array_equal(serving.score(reordered), serving.score(frame))


def test_a_missing_column_is_refused_by_name(serving: ServingModel) -> None:
    with pytest.raises(ModelInputError, match=r"\['v7'\]"):
        serving.score(normal_and_fraud_rows().drop(columns="v7"))


def test_a_datetime_event_time_is_refused_not_misread(serving: ServingModel) -> None:
    frame = normal_and_fraud_rows()
    frame["event_time"] = pd.to_datetime(frame["event_time"], unit="ms", utc=True)
    with pytest.raises(ModelInputError, match="event_time has dtype"):
        serving.score(frame)
