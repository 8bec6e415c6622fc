"""The numpy evaluation of a logistic-regression pipeline gives sklearn's scores exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_frames import synthetic_history
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.model.linear_scoring import compile_linear
from fraudpipe.model.serving import ServingModel
from fraudpipe.model.training import Candidate, TrainingConfig, build_pipeline, fit_candidate

pytestmark = pytest.mark.unit

HISTORY = synthetic_history(days=2, rows_per_day=2000, seed=11)


def _inputs(n: int, seed: int) -> pd.DataFrame:
    rows = synthetic_history(days=1, rows_per_day=n, seed=seed).drop(columns=LABEL_COLUMN)
    return rows[MODEL_INPUT_COLUMNS]


@pytest.mark.parametrize(
    "candidate",
    [
        Candidate("none", True, 1.0),
        Candidate("class_weight", False, 0.1),
        Candidate("downsample", True, 0.01),
    ],
    ids=lambda c: c.label,
)
@pytest.mark.parametrize("n", [1, 2, 17, 1000, 12_345])
def test_scores_equal_predict_proba_bit_for_bit(candidate: Candidate, n: int) -> None:
    pipeline = fit_candidate(HISTORY, candidate, TrainingConfig())
    model = ServingModel("fraud-detector", 1, 0.5, pipeline)
    frame = _inputs(n, seed=n)

    assert model.linear is not None
    np.testing.assert_array_equal(model.score(frame), pipeline.predict_proba(frame)[:, 1])


def test_contributions_add_up_to_the_decision_function() -> None:
    pipeline = fit_candidate(HISTORY, Candidate("none", True, 1.0), TrainingConfig())
    linear = compile_linear(pipeline)
    assert linear is not None
    frame = _inputs(300, seed=3)

    contributions = linear.contributions(linear.columns_of(frame))

    assert linear.feature_names == list(pipeline[:-1].get_feature_names_out())
    np.testing.assert_allclose(
        contributions.sum(axis=1) + pipeline[-1].intercept_[0],
        pipeline.decision_function(frame),
        rtol=1e-12,
        atol=1e-12,
    )


def test_models_it_cannot_reproduce_stay_on_sklearn() -> None:
    hgb = build_pipeline("hgb", Candidate("none", True, 0.1), seed=0, hgb_max_iter=5)
    labels = HISTORY[LABEL_COLUMN].to_numpy()
    hgb.fit(HISTORY[MODEL_INPUT_COLUMNS], labels)
    unknown_function = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [("v", FunctionTransformer(np.tanh), list(V_COLUMNS))], remainder="drop"
                ),
            ),
            ("classifier", LogisticRegression()),
        ]
    ).fit(HISTORY[MODEL_INPUT_COLUMNS], labels)
    pandas_output = Pipeline(
        [
            (
                "features",
                ColumnTransformer([("v", StandardScaler(), list(V_COLUMNS))]).set_output(
                    transform="pandas"
                ),
            ),
            ("classifier", LogisticRegression()),
        ]
    ).fit(HISTORY[MODEL_INPUT_COLUMNS], labels)

    for pipeline in (hgb, unknown_function, pandas_output):
        model = ServingModel("fraud-detector", 1, 0.5, pipeline)
        frame = _inputs(50, seed=5)
        assert model.linear is None
        np.testing.assert_array_equal(model.score(frame), pipeline.predict_proba(frame)[:, 1])
