"""Feature transforms: hour of day on the circle, log amount, the preprocessor's columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_frames import synthetic_history

from fraudpipe.columns import MODEL_INPUT_COLUMNS
from fraudpipe.model.features import MS_PER_DAY, build_preprocessor, hour_of_day_cyclic, log_amount

pytestmark = pytest.mark.unit

MIDNIGHT = 1_758_326_400_000  # 2025-09-20T00:00:00Z


def test_model_input_columns_are_the_shared_contract() -> None:
    assert ["event_time", "amount", *(f"v{i}" for i in range(1, 29))] == MODEL_INPUT_COLUMNS


def test_hour_of_day_puts_midnight_at_top_and_six_at_right() -> None:
    points = hour_of_day_cyclic(np.array([MIDNIGHT, MIDNIGHT + 6 * 3_600_000]))
    np.testing.assert_allclose(points, [[0.0, 1.0], [1.0, 0.0]], atol=1e-12)


def test_hour_of_day_is_the_same_every_day_and_wraps_at_midnight() -> None:
    t = MIDNIGHT + 13 * 3_600_000 + 123
    same_time = hour_of_day_cyclic(np.array([t, t + MS_PER_DAY, t + 400 * MS_PER_DAY]))
    np.testing.assert_allclose(same_time, np.repeat(same_time[:1], 3, axis=0), atol=1e-12)
    before, after = hour_of_day_cyclic(np.array([MIDNIGHT - 1, MIDNIGHT + 1]))
    assert np.linalg.norm(before - after) < 1e-6


def test_log_amount_is_monotonic_and_clips_negative_amounts_to_zero() -> None:
    out = log_amount(np.array([-5.0, 0.0, 1.0, 25_691.16]))
    assert out[0] == 0.0 == out[1]
    assert np.all(np.diff(out[1:]) > 0)


@pytest.mark.parametrize("use_hour", [False, True])
def test_preprocessor_never_passes_the_raw_timestamp(use_hour: bool) -> None:
    frame = synthetic_history(days=1, rows_per_day=200)[MODEL_INPUT_COLUMNS]
    pre = build_preprocessor(use_hour=use_hour).fit(frame)
    names = list(pre.get_feature_names_out())
    assert "event_time" not in names
    assert ("hour_sin" in names) is use_hour
    assert names[-29:] == ["amount", *(f"v{i}" for i in range(1, 29))]
    out = pre.transform(frame)
    assert out.shape == (200, 29 + 2 * use_hour)
    # Scaled features: centred with unit spread on the data they were fitted on.
    np.testing.assert_allclose(out[:, -29:].mean(axis=0), 0.0, atol=1e-9)


def test_preprocessor_ignores_extra_columns_and_column_order() -> None:
    frame = synthetic_history(days=1, rows_per_day=100)
    pre = build_preprocessor(use_hour=True).fit(frame[MODEL_INPUT_COLUMNS])
    shuffled = frame[list(reversed(frame.columns))].assign(extra=pd.Series(range(100)))
    np.testing.assert_array_equal(
        pre.transform(shuffled), pre.transform(frame[MODEL_INPUT_COLUMNS])
    )
