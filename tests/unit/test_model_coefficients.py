"""Coefficients logged with a run read back exactly, and only linear models have them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fraudpipe.model.coefficients import as_artifact, from_artifact, linear_coefficients

pytestmark = pytest.mark.unit


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(400, 3)), columns=["amount", "v1", "v2"])
    y = (x["v1"] + 0.1 * rng.normal(size=400) > 0.5).astype(int).to_numpy()
    return x, y


def test_linear_coefficients_survive_the_json_artifact() -> None:
    x, y = _data()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    coefficients = linear_coefficients(pipeline)
    assert coefficients is not None
    assert coefficients["feature"].tolist() == ["amount", "v1", "v2"]
    # v1 decides the label, so it carries the largest weight
    assert coefficients.loc[coefficients["coefficient"].abs().idxmax(), "feature"] == "v1"
    back = from_artifact(json.loads(json.dumps(as_artifact(coefficients))))
    pd.testing.assert_frame_equal(back, coefficients)


def test_a_tree_model_has_no_coefficients() -> None:
    x, y = _data()
    pipeline = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=5)).fit(x, y)
    assert linear_coefficients(pipeline) is None
