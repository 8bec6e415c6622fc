"""An alert's reasons in words: the inputs that pushed one row's score up most.

The scorer explains the alerts of each micro-batch, and the scoring API every decision, with
this one function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt
import pandas as pd

from fraudpipe.columns import MODEL_INPUT_COLUMNS
from fraudpipe.model.reasons import top_reasons
from fraudpipe.model.serving import ServingModel
from fraudpipe.records import AlertDriver


def alert_drivers(
    model: ServingModel, inputs: pd.DataFrame | Mapping[str, npt.NDArray[Any]]
) -> tuple[str, list[tuple[AlertDriver, ...]]]:
    """Per row, the inputs that pushed its log-odds up most (largest first), in words.

    Exact for a linear model, SHAP for a tree ensemble (`fraudpipe.model.reasons`); a model
    that cannot be attributed gives every row none (the contract's documented empty list).

    Args:
        model: The serving model.
        inputs: Model-input rows of the alerts (a handful per micro-batch), as a frame or
            as arrays by column.

    Returns:
        The method, and one tuple of up to `TOP_REASONS` drivers per row.
    """
    columns = (
        {c: inputs[c].to_numpy() for c in MODEL_INPUT_COLUMNS}
        if isinstance(inputs, pd.DataFrame)
        else inputs
    )
    rows = len(next(iter(columns.values()))) if columns else 0
    if model.explain is None:
        return "", [() for _ in range(rows)]
    attribution = model.explain(columns)
    return attribution.method, [
        tuple(AlertDriver(r.feature, r.contribution, r.description) for r in reasons)
        for reasons in top_reasons(attribution, columns)
    ]
