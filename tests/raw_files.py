"""Small raw-row frames and files in the ULB layout, for ingestion tests (no real data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

RAW_COLUMNS = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"]


def raw_frame(
    n: int,
    *,
    seed: int = 0,
    start_seconds: float = 0.0,
    seconds_apart: float = 60.0,
    with_ids: bool = False,
    first_id: int = 1000,
) -> pd.DataFrame:
    """`n` valid raw rows: ULB columns, Time rising from `start_seconds`, about 10% frauds."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 28)), columns=[f"V{i}" for i in range(1, 29)])
    frame.insert(0, "Time", start_seconds + seconds_apart * np.arange(n, dtype=np.float64))
    frame["Amount"] = np.round(rng.gamma(2.0, 40.0, size=n), 2)
    frame["Class"] = (rng.random(n) < 0.1).astype(np.int64)
    if with_ids:
        frame.insert(0, "id", np.arange(first_id, first_id + n, dtype=np.int64))
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write like the ULB file: header, one line per row, full float precision."""
    frame.to_csv(path, index=False, float_format="%.17g")
    return path
