"""The raw-row contract: every broken rule becomes a readable reason; good rows go through."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from raw_files import raw_frame

from fraudpipe.data.schemas import MAX_TIME_SECONDS, validate_raw

pytestmark = pytest.mark.unit


def test_clean_rows_all_valid_and_typed() -> None:
    frame = raw_frame(50)
    checked = validate_raw(frame)
    assert checked.reasons == {}
    assert len(checked.valid) == 50
    assert (checked.valid.dtypes == np.float64).all()
    assert checked.valid.index.tolist() == list(range(50))


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("Amount", -3.5, "Amount: negative (-3.5)"),
        ("Time", -1.0, "Time: negative (-1.0)"),
        ("Time", MAX_TIME_SECONDS * 2, "Time: too large"),
        ("V7", np.nan, "V7: missing"),
        ("Amount", np.inf, "Amount: inf is outside [0, 51382.3]"),
        ("V3", -np.inf, "V3: -inf is outside [-106.034, 67.0907]"),
        ("V28", 1e308, "V28: 1e+308 is outside [-64.708, 83.1257]"),
        ("Amount", 1e300, "Amount: 1e+300 is outside [0, 51382.3]"),
        ("Class", 2, "Class: not 0 or 1 (2.0)"),
    ],
)
def test_each_broken_rule_rejects_only_its_row(column: str, value: float, reason: str) -> None:
    frame = raw_frame(10).astype({"Class": "float64"})
    frame.loc[4, column] = value
    checked = validate_raw(frame)
    assert list(checked.reasons) == [4]
    assert checked.reasons[4][0].startswith(reason)
    assert checked.valid.index.tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 9]


def test_missing_label_is_allowed() -> None:
    frame = raw_frame(5).astype({"Class": "float64"})
    frame.loc[2, "Class"] = np.nan
    checked = validate_raw(frame)
    assert checked.reasons == {}
    assert np.isnan(checked.valid.loc[2, "Class"])


def test_no_label_column_means_unlabelled_rows() -> None:
    checked = validate_raw(raw_frame(5).drop(columns="Class"))
    assert checked.reasons == {}
    assert checked.valid["Class"].isna().all()


def test_text_in_a_number_rejects_that_row_and_other_rules_still_run() -> None:
    frame = raw_frame(6).astype({"V2": object})
    frame.loc[1, "V2"] = "abc"
    frame.loc[3, "Amount"] = -1.0  # broken in another column, on another row
    frame.loc[5, "V2"] = "-0.25"  # text that is a number is fine
    checked = validate_raw(frame)
    assert checked.reasons[1] == ["V2: not a number ('abc')"]
    assert checked.reasons[3] == ["Amount: negative (-1.0)"]
    assert set(checked.reasons) == {1, 3}
    assert checked.valid.loc[5, "V2"] == -0.25
    assert checked.valid["V2"].dtype == np.float64


def test_several_broken_rules_on_one_row_are_all_reported() -> None:
    frame = raw_frame(3)
    frame.loc[0, ["Amount", "V1"]] = [-2.0, np.nan]
    reasons = validate_raw(frame).reasons[0]
    assert "Amount: negative (-2.0)" in reasons
    assert "V1: missing" in reasons


def test_ids_must_be_non_negative_integers() -> None:
    frame = raw_frame(4, with_ids=True).astype({"id": str})
    frame.loc[1, "id"] = "x7"
    frame.loc[2, "id"] = "-5"
    checked = validate_raw(frame)
    assert set(checked.reasons) == {1, 2}
    assert checked.reasons[1][0].startswith("id: not a non-negative integer")
    assert checked.valid["id"].dtype == np.int64


def test_huge_ids_keep_every_digit() -> None:
    frame = raw_frame(2, with_ids=True).astype({"id": str})
    frame.loc[0, "id"] = str(2**59 + 1)
    assert validate_raw(frame).valid.loc[0, "id"] == 2**59 + 1


def test_repeated_id_with_identical_values_keeps_the_first() -> None:
    frame = raw_frame(4, with_ids=True).astype({"id": str})
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    checked = validate_raw(frame)
    assert list(checked.reasons) == [4]
    assert "repeats position 1 (identical values)" in checked.reasons[4][0]
    assert 1 in checked.valid.index


def test_repeated_id_with_different_values_rejects_all_of_them() -> None:
    frame = raw_frame(4, with_ids=True).astype({"id": str})
    frame.loc[3, "id"] = frame.loc[0, "id"]
    checked = validate_raw(frame)
    assert set(checked.reasons) == {0, 3}
    assert "also at position(s) 3 with different values" in checked.reasons[0][0]
    assert checked.valid.index.tolist() == [1, 2]


def test_float_and_integer_columns_meet_the_same_contract() -> None:
    # A parsed CSV arrives all float64 and skips the coercion step; a Parquet file may hold
    # integers, which are coerced. Both must reject and keep the same rows.
    as_integers = raw_frame(10)
    as_integers.loc[3, "Amount"] = -1.0
    as_integers.loc[6, "Class"] = 2
    as_floats = as_integers.astype(np.float64)
    typed, coerced = validate_raw(as_floats), validate_raw(as_integers)
    assert typed.reasons == coerced.reasons
    assert list(typed.reasons) == [3, 6]
    pd.testing.assert_frame_equal(typed.valid, coerced.valid)
