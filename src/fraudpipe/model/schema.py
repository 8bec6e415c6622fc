"""The data check on a labelled training frame: a blocking gate before any fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from fraudpipe.columns import LABEL_COLUMN, V_COLUMNS
from fraudpipe.errors import TrainingDataError


def _finite(series: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(series.to_numpy(dtype=np.float64)), index=series.index)


LABELLED_FRAME_SCHEMA = pa.DataFrameSchema(
    {
        "event_time": pa.Column("int64", pa.Check.gt(0), nullable=False),
        "amount": pa.Column("float64", [pa.Check.ge(0.0), pa.Check(_finite)], nullable=False),
        **{c: pa.Column("float64", pa.Check(_finite), nullable=False) for c in V_COLUMNS},
        LABEL_COLUMN: pa.Column("int64", pa.Check.isin([0, 1]), nullable=False),
    },
    strict=False,
    coerce=False,
    name="labelled history",
)


def validate_labelled_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Check types and values of a labelled frame (model input columns plus ``label``).

    Args:
        frame: Rows to train or evaluate on.

    Returns:
        The same frame, unchanged.

    Raises:
        TrainingDataError: A column is missing, has the wrong dtype, or holds a value a model
            cannot use (NaN, infinity, negative amount, label other than 0/1); the message
            counts failures per column and check.
    """
    try:
        LABELLED_FRAME_SCHEMA.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        counts = cases.groupby(["column", "check"], dropna=False).size().head(10)
        detail = "; ".join(f"{col} {check}: {n} rows" for (col, check), n in counts.items())
        raise TrainingDataError(
            f"labelled frame failed its schema ({detail})",
            hint="fix the source rows (bad rows belong in quarantine, not in transactions)",
        ) from exc
    return frame
