"""Labelled history straight from the ULB file, for benchmarks and tests that must not depend on
ingestion (production training reads the database: `fraudpipe.adapters.postgres.history`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fraudpipe.columns import LABEL_COLUMN, V_COLUMNS
from fraudpipe.data.sources import TIME_ZERO
from fraudpipe.errors import TrainingDataError
from fraudpipe.model.schema import validate_labelled_frame


def history_from_ulb_csv(path: Path) -> pd.DataFrame:
    """The ULB ``creditcard.csv`` as a labelled frame, without going through the database.

    For benchmarks and tests that must not depend on ingestion; production training reads the
    database. Event time is ``TIME_ZERO + Time`` seconds; ``Class`` becomes ``label``.

    Raises:
        TrainingDataError: The file is missing or lacks the ULB columns.
    """
    if not path.is_file():
        raise TrainingDataError(
            f"ULB file not found at {path}", hint="download it (see README: data) or pass --csv"
        )
    raw = pd.read_csv(path)
    expected = {"Time", "Amount", "Class", *(c.upper() for c in V_COLUMNS)}
    missing = sorted(expected - set(raw.columns))
    if missing:
        raise TrainingDataError(f"{path} lacks ULB columns {missing}", hint="is it creditcard.csv?")
    zero_ms = int(TIME_ZERO.timestamp() * 1000)
    # Time has whole seconds in the file; rint guards against a float like 406.99999.
    offset_ms = np.rint(raw["Time"].to_numpy(dtype=np.float64) * 1000).astype(np.int64)
    frame = pd.DataFrame(
        {
            "event_time": zero_ms + offset_ms,
            "amount": raw["Amount"].astype("float64"),
            **{c: raw[c.upper()].astype("float64") for c in V_COLUMNS},
            LABEL_COLUMN: raw["Class"].astype("int64"),
        }
    )
    return validate_labelled_frame(frame.sort_values("event_time", kind="stable"))
