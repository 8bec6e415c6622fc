"""PSI of one scored batch against a reference profile, next to anchors measured in the same run.

The batch is the size of a ULB day (285,000 rows) and the profile has the drift task's 31
columns (`fraudpipe.model.drift.PROFILED` and the score). Measured, each the median of 5 rounds:

- `ReferenceProfile.psi`, what the daily DAG's drift task runs per version of a batch, from
  the model-input columns (the hour derived, every column made float64);
- the same on columns already prepared (`BinnedColumn.psi` per column);
- the floor: `np.searchsorted` of every column into its bins with nothing else (no counting, no
  shares, no logarithm): no PSI over these bins can take less;
- the way a notebook would do it: `pandas.cut` and `value_counts` per column, on the prepared
  columns.

The load average is printed beside the table: the machine has 2 cores, shared with the stack.

Run: `uv run python bench/drift.py` (needs no service; writes nothing).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.console import Console
from rich.table import Table

from fraudpipe.columns import MODEL_INPUT_COLUMNS
from fraudpipe.model.drift import ReferenceProfile, profiled_values

ROWS = 285_000
REFERENCE_ROWS = 1_000_000
ROUNDS = 5


def columns(n: int, rng: np.random.Generator) -> dict[str, npt.NDArray[np.generic]]:
    out: dict[str, npt.NDArray[np.generic]] = {
        c: rng.standard_t(4, n) for c in MODEL_INPUT_COLUMNS if c != "event_time"
    }
    out["amount"] = np.round(rng.exponential(88.0, n), 2)
    out["event_time"] = rng.integers(0, 2 * 86_400_000, n)
    return out


def median_seconds(call: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(7)
    reference = ReferenceProfile.of(
        columns(REFERENCE_ROWS, rng), rng.beta(1, 300, REFERENCE_ROWS), 0.002
    )
    batch, scores = columns(ROWS, rng), rng.beta(1, 300, ROWS)
    values = {**profiled_values(batch), "score": scores}
    edges = {c.name: np.asarray(c.edges) for c in reference.columns}

    def floor() -> None:
        for name, e in edges.items():
            np.searchsorted(e, values[name], side="left")

    def pandas_way() -> None:
        for name, e in edges.items():
            bins = np.concatenate([[-np.inf], e, [np.inf]])
            pd.Series(pd.cut(values[name], pd.Index(bins))).value_counts(normalize=True, sort=False)

    def prepared() -> None:
        for column in reference.columns:
            column.psi(values[column.name])

    rows = [
        (
            "ReferenceProfile.psi (the drift task)",
            median_seconds(lambda: reference.psi(batch, scores)),
        ),
        ("BinnedColumn.psi on prepared columns", median_seconds(prepared)),
        ("floor: searchsorted only", median_seconds(floor)),
        ("pandas.cut + value_counts per column", median_seconds(pandas_way)),
    ]
    table = Table(
        title=f"PSI of {ROWS:,} rows x {len(reference.columns)} columns (median of {ROUNDS})"
    )
    for col in ("measurement", "ms", "rows/s"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for what, seconds in rows:
        table.add_row(what, f"{seconds * 1e3:.1f}", f"{ROWS / seconds:,.0f}")
    console = Console(width=120)
    console.print(table)
    console.print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
