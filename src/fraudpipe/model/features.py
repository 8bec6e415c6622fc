"""What the model sees: its input columns and the preprocessing that travels inside the model.

Every transform lives in one sklearn ``Pipeline`` that is logged with the classifier, so the
scoring service passes raw model-input columns and can never skew from training.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from fraudpipe.columns import V_COLUMNS

MS_PER_DAY: Final = 86_400_000

HOUR_FEATURES: Final[list[str]] = ["hour_sin", "hour_cos"]

# Functions the pipeline calls by reference. The model is saved with skops (safe loading), which
# refuses unknown callables unless they are listed as trusted when the model is logged.
TRUSTED_CALLABLES: Final[list[str]] = [
    "fraudpipe.model.features.hour_of_day_cyclic",
    "fraudpipe.model.features.log_amount",
    "fraudpipe.model.features.hour_feature_names",
]


def hour_of_day_cyclic(event_time_ms: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Time of day (UTC) as a point on the unit circle, so 23:59 sits next to 00:00.

    Args:
        event_time_ms: One column of epoch milliseconds (any 1-D or n×1 array-like).

    Returns:
        An n×2 array: sine and cosine of the fraction of the day elapsed.
    """
    ms = np.asarray(event_time_ms, dtype=np.int64).reshape(-1)
    # Modulo on integers first: epoch milliseconds are ~1.7e12, and float phases lose precision.
    angle = 2.0 * np.pi * (np.mod(ms, MS_PER_DAY) / MS_PER_DAY)
    return np.column_stack([np.sin(angle), np.cos(angle)])


def log_amount(amount: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``log1p`` of the amount, clipped at zero.

    Amounts are heavy-tailed (0 to ~25k), so the log keeps a few large ones from dominating a
    linear model. Negative amounts are refused by the data contract upstream; the clip only keeps
    one odd row from turning into NaN and failing a whole scoring micro-batch.
    """
    values = np.asarray(amount, dtype=np.float64)
    return np.log1p(np.clip(values, 0.0, None))


def hour_feature_names(transformer: object, input_features: object) -> list[str]:
    """Output names of the hour-of-day transform (sklearn's ``feature_names_out`` hook)."""
    return list(HOUR_FEATURES)


def build_preprocessor(*, use_hour: bool) -> ColumnTransformer:
    """The feature transform: scaled log-amount, scaled V1..V28, optionally hour of day.

    The raw ``event_time`` is never a feature: an absolute timestamp only says "later than
    training", which a model cannot learn from and which shifts on every holdout.

    Args:
        use_hour: Add the cyclic hour-of-day pair derived from ``event_time``.

    Returns:
        An unfitted ``ColumnTransformer`` that consumes ``MODEL_INPUT_COLUMNS``.
    """
    amount = Pipeline(
        [
            ("log1p", FunctionTransformer(log_amount, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
        ]
    )
    parts: list[tuple[str, object, list[str]]] = [
        ("amount", amount, ["amount"]),
        # The PCA components are centred but far from unit variance; scaling keeps the
        # regularisation strength comparable across them.
        ("v", StandardScaler(), list(V_COLUMNS)),
    ]
    if use_hour:
        hour = FunctionTransformer(
            hour_of_day_cyclic, validate=False, feature_names_out=hour_feature_names
        )
        parts.insert(0, ("hour", hour, ["event_time"]))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
