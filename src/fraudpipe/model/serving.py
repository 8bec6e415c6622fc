"""The model as the scoring service sees it: a registered version, its threshold, ``score``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudpipe.columns import MODEL_INPUT_COLUMNS
from fraudpipe.errors import ModelInputError
from fraudpipe.model.linear_scoring import LinearScorer, compile_linear
from fraudpipe.model.reasons import Explain, explainer_for


def check_model_input(inputs: pd.DataFrame | Mapping[str, npt.NDArray[Any]]) -> None:
    """Refuse input the pipeline would mis-read rather than score it wrongly.

    Args:
        inputs: A model-input frame, or its columns as arrays by name.

    Raises:
        ModelInputError: A model-input column is missing, or ``event_time`` is not integer
            epoch milliseconds (a datetime column would silently turn into nanoseconds).
    """
    missing = [c for c in MODEL_INPUT_COLUMNS if c not in inputs]
    if missing:
        raise ModelInputError(f"missing columns {missing}")
    dtype = inputs["event_time"].dtype
    if not pd.api.types.is_integer_dtype(dtype):
        raise ModelInputError(f"event_time has dtype {dtype}, not int64")


def probabilities(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Per score, whether a model's answer is a probability: finite and in [0, 1]. A model is
    untrusted code; the scorer and the API decide nothing on an answer that is not one."""
    return np.asarray(np.isfinite(scores) & (scores >= 0.0) & (scores <= 1.0), dtype=np.bool_)


@dataclass(frozen=True)
class ServingModel:
    """One registered model version, loaded, with the threshold it was registered with.

    Attributes:
        name: Registered model name.
        version: Registered version number.
        threshold: Flag a transaction as fraud when its score is at least this.
        pipeline: The fitted sklearn pipeline (preprocessing and classifier).
        alias: The alias it was loaded through, if any.
    """

    name: str
    version: int
    threshold: float
    pipeline: Any
    alias: str | None = None
    linear: LinearScorer | None = field(init=False, repr=False, compare=False)
    """The pipeline compiled to numpy when it is a logistic regression (same scores, faster)."""
    explain: Explain | None = field(init=False, repr=False, compare=False)
    """How to attribute its scores to its inputs (`fraudpipe.model.reasons`), if it can be."""

    def __post_init__(self) -> None:
        linear = compile_linear(self.pipeline)
        object.__setattr__(self, "linear", linear)
        object.__setattr__(self, "explain", explainer_for(self.pipeline, linear))

    def score(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Fraud probability per row (extra columns are ignored, order follows the frame).

        Raises:
            ModelInputError: The frame lacks model-input columns or has a non-integer event time.
        """
        check_model_input(frame)
        if self.linear is not None:
            return self.linear.score(self.linear.columns_of(frame))
        proba = self.pipeline.predict_proba(frame[MODEL_INPUT_COLUMNS])
        return np.asarray(proba[:, 1], dtype=np.float64)

    def score_columns(self, columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        """`score` of model-input columns given as arrays (the scorer's per-micro-batch call).

        Raises:
            ModelInputError: A column is missing or ``event_time`` is not integer epoch ms.
        """
        check_model_input(columns)
        if self.linear is not None:
            return self.linear.score(columns)
        return self.score(pd.DataFrame({c: columns[c] for c in MODEL_INPUT_COLUMNS}))

    def is_fraud(self, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """The decision for each score at this version's threshold."""
        return np.asarray(scores >= self.threshold, dtype=np.bool_)
