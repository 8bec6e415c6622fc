"""What drives a logistic-regression score: its coefficients by feature, logged with each run.

Features are standardised inside the pipeline, so a coefficient is the change in log-odds of
fraud per standard deviation of its feature. They are written as a small JSON artifact at
training time, so a reader (the dashboard) does not have to download and unpickle the model.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

COEFFICIENTS_ARTIFACT: Final = "evaluation/coefficients.json"


def linear_coefficients(pipeline: Pipeline) -> pd.DataFrame | None:
    """Feature names and coefficients of a fitted linear pipeline; None for other models."""
    classifier = pipeline[-1]
    if not hasattr(classifier, "coef_"):
        return None
    names = [str(n) for n in pipeline[:-1].get_feature_names_out()]
    values = np.asarray(classifier.coef_, dtype=np.float64).reshape(-1)
    return pd.DataFrame({"feature": names, "coefficient": values})


def as_artifact(coefficients: pd.DataFrame) -> dict[str, list[str] | list[float]]:
    """The JSON body of `COEFFICIENTS_ARTIFACT`."""
    return {
        "feature": coefficients["feature"].astype(str).tolist(),
        "coefficient": coefficients["coefficient"].astype(float).tolist(),
    }


def from_artifact(body: dict[str, list[str] | list[float]]) -> pd.DataFrame:
    """The frame `linear_coefficients` returned, from the logged JSON body."""
    return pd.DataFrame({"feature": body["feature"], "coefficient": body["coefficient"]})
