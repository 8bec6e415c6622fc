"""A fitted logistic-regression pipeline evaluated with numpy alone, score for score.

The scorer calls its model on every micro-batch. sklearn's ``predict_proba`` on the pipeline
validates and converts DataFrames at every step (the column transformer, each scaler, the
classifier): 25–35 ms per micro-batch whatever its size, which at a trickle of messages is most
of the latency budget. The fitted pipeline is plain arithmetic, so `compile_linear` reads its
parameters once and `LinearScorer` repeats sklearn's operations in the same order, on arrays of
the same dtype and memory layout (a multi-column input is column-major, as a DataFrame's values
are; the layout decides how the classifier's matrix product sums), so the scores are
bit-for-bit those of ``predict_proba``; the tests hold it to
equality. A pipeline of any other shape is not compiled and the caller keeps using sklearn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from fraudpipe.model.features import hour_of_day_cyclic, log_amount

Floats = npt.NDArray[np.float64]
Columns = Mapping[str, npt.NDArray[Any]]

#: Functions known to compute the same on an ndarray as on the one-column DataFrame the
#: column transformer hands them (both start with ``np.asarray``); any other function in a
#: pipeline keeps it on sklearn.
ARRAY_FUNCTIONS: Final[tuple[Callable[..., Any], ...]] = (hour_of_day_cyclic, log_amount)


@dataclass(frozen=True)
class _Step:
    """One fitted transform of a column group: a function, or centring and scaling."""

    func: Callable[..., Any] | None = None
    kw_args: Mapping[str, Any] | None = None
    mean: Floats | None = None
    scale: Floats | None = None

    def apply(self, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if self.func is not None:
            return np.asarray(self.func(x, **(self.kw_args or {})))
        # StandardScaler.transform: a float64 copy, then in-place centring and scaling.
        out = np.array(x, dtype=np.float64, copy=True)
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return out


@dataclass(frozen=True)
class _Part:
    """One entry of the column transformer: its input columns and steps, in order."""

    columns: tuple[str, ...]
    steps: tuple[_Step, ...]

    def apply(self, columns: Columns) -> npt.NDArray[Any]:
        if len(self.columns) == 1:
            x: npt.NDArray[Any] = np.asarray(columns[self.columns[0]]).reshape(-1, 1)
        else:
            # Column-major, as a DataFrame's values are (see the module docstring).
            x = np.stack([columns[c] for c in self.columns]).T
        for step in self.steps:
            x = step.apply(x)
        return x


class LinearScorer:
    """Scores and per-feature log-odds contributions of a compiled logistic regression."""

    def __init__(
        self, parts: Sequence[_Part], coef: Floats, intercept: Floats, names: Sequence[str]
    ) -> None:
        """Hold the compiled parameters (use `compile_linear`)."""
        self._parts = tuple(parts)
        # The same transposed view sklearn multiplies by, so the product sums identically.
        self._coef_t = coef.T
        self._coef_row = np.asarray(coef[0], dtype=np.float64)
        self._intercept = intercept
        self.feature_names = list(names)
        self.input_columns = tuple(dict.fromkeys(c for p in self._parts for c in p.columns))

    def transform(self, columns: Columns) -> Floats:
        """The classifier's input matrix (n × features), laid out as sklearn's, of raw columns."""
        return np.asarray(np.hstack([p.apply(columns) for p in self._parts]), dtype=np.float64)

    def score(self, columns: Columns) -> Floats:
        """Fraud probability per row: ``predict_proba(...)[:, 1]``, exactly."""
        decision = self.transform(columns) @ self._coef_t + self._intercept
        prob = decision.reshape(-1)
        expit(prob, out=prob)
        return prob

    def contributions(self, columns: Columns) -> Floats:
        """Per row and feature, transformed value times coefficient (adds up to the log-odds)."""
        return self.transform(columns) * self._coef_row

    def columns_of(self, frame: pd.DataFrame) -> dict[str, npt.NDArray[Any]]:
        """The input columns of a model-input frame, as arrays."""
        return {c: frame[c].to_numpy() for c in self.input_columns}


def compile_linear(pipeline: Any) -> LinearScorer | None:
    """A `LinearScorer` of a fitted binary logistic-regression pipeline, or None.

    Compiled: ``Pipeline([ColumnTransformer, LogisticRegression])`` whose column transformer
    drops the remainder, outputs numpy, and applies StandardScalers, FunctionTransformers of
    `ARRAY_FUNCTIONS`, or pipelines of both to named columns. Anything else returns None.
    """
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    features, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(features, ColumnTransformer) or not _binary_lr(classifier):
        return None
    if _custom_output(features) or getattr(features, "sparse_output_", False):
        return None
    parts: list[_Part] = []
    for name, transformer, columns in features.transformers_:
        if transformer == "drop" or (name == "remainder" and _empty(columns)):
            continue
        steps = _steps(transformer)
        if steps is None or not _named(columns):
            return None
        parts.append(_Part(tuple(columns), steps))
    try:
        names = [str(n) for n in features.get_feature_names_out()]
    except (AttributeError, ValueError):
        return None
    coef = np.asarray(classifier.coef_)
    if not parts or coef.dtype != np.float64 or coef.shape[1] != len(names):
        return None
    return LinearScorer(parts, coef, np.asarray(classifier.intercept_), names)


def _binary_lr(classifier: Any) -> bool:
    return (
        type(classifier) is LogisticRegression
        and len(classifier.classes_) == 2
        and np.ndim(classifier.coef_) == 2
        and classifier.coef_.shape[0] == 1
    )


def _custom_output(estimator: Any) -> bool:
    config: dict[str, object] = getattr(estimator, "_sklearn_output_config", {})
    return config.get("transform", "default") != "default"


def _empty(columns: Any) -> bool:
    return len(columns) == 0 if hasattr(columns, "__len__") else False


def _named(columns: Any) -> bool:
    return isinstance(columns, list | tuple) and all(isinstance(c, str) for c in columns)


def _steps(transformer: Any) -> tuple[_Step, ...] | None:
    if isinstance(transformer, Pipeline):
        if _custom_output(transformer):
            return None
        steps: list[_Step] = []
        for _, inner in transformer.steps:
            step = _step(inner)
            if step is None:
                return None
            steps.append(step)
        return tuple(steps)
    step = _step(transformer)
    return None if step is None else (step,)


def _step(transformer: Any) -> _Step | None:
    if _custom_output(transformer):
        return None
    if type(transformer) is StandardScaler:
        mean = transformer.mean_ if transformer.with_mean else None
        scale = transformer.scale_ if transformer.with_std else None
        return _Step(mean=_floats(mean), scale=_floats(scale))
    if type(transformer) is FunctionTransformer:
        func = transformer.func
        if func is None or not any(func is known for known in ARRAY_FUNCTIONS):
            return None
        return _Step(func=func, kw_args=transformer.kw_args)
    return None


def _floats(values: Any) -> Floats | None:
    return None if values is None else np.asarray(values, dtype=np.float64)
