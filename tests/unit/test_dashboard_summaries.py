"""The dashboard's derived tables, on tiny frames shaped like the queries' results."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudpipe.adapters.postgres.dashboard_queries import (
    AMOUNT_BINS,
    AMOUNT_LOG_MAX,
    SCORE_BINS,
    V_COLUMNS,
)
from fraudpipe.dashboard import summaries

pytestmark = pytest.mark.unit


def hourly_rows() -> pd.DataFrame:
    """Three hours over two days and two versions, as `fraud_by_hour` returns them."""
    hours = pd.to_datetime(
        ["2025-09-20T10:00Z", "2025-09-20T11:00Z", "2025-09-21T03:00Z", "2025-09-21T03:00Z"]
    )
    return pd.DataFrame(
        {
            "hour": hours,
            "model_version": [1, 1, 1, 2],
            "scored": [100, 50, 80, 20],
            "flagged": [4, 0, 2, 1],
            "labelled": [100, 50, 0, 20],
            "frauds": [3, 0, 0, 1],
            "caught": [2, 0, 0, 1],
            "missed": [1, 0, 0, 0],
            "false_alarms": [2, 0, 0, 0],
            "amount": [1000.0, 500.0, 800.0, 200.0],
            "amount_flagged": [90.0, 0.0, 30.0, 15.0],
            "amount_caught": [60.0, 0.0, 0.0, 15.0],
            "amount_missed": [25.0, 0.0, 0.0, 0.0],
        }
    )


def test_daily_history_sums_hours_of_the_same_utc_day_per_version() -> None:
    daily = summaries.history(hourly_rows(), "day")
    first = daily[(daily["period"] == pd.Timestamp("2025-09-20", tz="UTC"))].iloc[0]
    assert (first["scored"], first["flagged"], first["caught"]) == (150, 4, 2)
    assert first["flagged_rate"] == pytest.approx(4 / 150)
    assert first["fraud_rate"] == pytest.approx(3 / 150)
    assert first["precision"] == pytest.approx(2 / 4)
    assert first["recall"] == pytest.approx(2 / 3)
    assert len(daily) == 3  # day 1 v1, day 2 v1, day 2 v2


def test_rates_are_nan_not_zero_without_a_denominator() -> None:
    hourly = summaries.history(hourly_rows(), "hour")
    unlabelled = hourly[(hourly["labelled"] == 0)].iloc[0]
    assert math.isnan(unlabelled["fraud_rate"])
    assert math.isnan(unlabelled["recall"])
    nothing_flagged = hourly[hourly["flagged"] == 0].iloc[0]
    assert math.isnan(nothing_flagged["precision"])
    assert nothing_flagged["flagged_rate"] == 0.0


def test_version_selection_and_totals() -> None:
    only_v2 = summaries.select_versions(hourly_rows(), [2])
    totals = summaries.overall_totals(only_v2)
    assert totals["scored"] == 20 and totals["caught"] == 1 and totals["recall"] == 1.0
    per_version = summaries.version_totals(hourly_rows()).set_index("model_version")
    assert per_version.loc[1, "scored"] == 230
    assert per_version.loc[1, "missed"] == 1
    assert len(summaries.select_versions(hourly_rows(), None)) == 4


def test_empty_history_has_the_columns_and_zero_totals() -> None:
    empty = hourly_rows().iloc[0:0]
    assert summaries.history(empty, "day").empty
    assert "precision" in summaries.version_totals(empty).columns
    totals = summaries.overall_totals(empty)
    assert totals["scored"] == 0.0 and math.isnan(totals["flagged_rate"])


def bin_like_sql(scores: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """What `score_bins` computes, done in numpy: least(width_bucket(score, 0, 1, B), B)."""
    bins = np.minimum(np.floor(scores * SCORE_BINS).astype(int) + 1, SCORE_BINS)
    frame = pd.DataFrame({"bin": bins, "label": labels})
    grouped = frame.groupby("bin")["label"].agg(positives="sum", negatives="count")
    grouped["negatives"] -= grouped["positives"]
    return grouped.reset_index()


def test_curves_from_bins_match_sklearn_on_binned_scores() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(5000) < 0.05).astype(int)
    scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.15), 0.0, 1.0)
    curves = summaries.curves_from_bins(bin_like_sql(scores, labels))
    assert curves is not None
    assert (curves.positives, curves.negatives) == (labels.sum(), len(labels) - labels.sum())
    # Scores are only known to the bin, so compare with sklearn on the bins' lower edges.
    binned = (np.minimum(np.floor(scores * SCORE_BINS), SCORE_BINS - 1)) / SCORE_BINS
    assert curves.average_precision == pytest.approx(average_precision_score(labels, binned))
    assert curves.roc_auc == pytest.approx(roc_auc_score(labels, binned))
    assert curves.points["recall"].iloc[-1] == 1.0 and curves.points["fpr"].iloc[-1] == 1.0
    assert curves.points["threshold"].is_monotonic_decreasing


def test_curves_need_both_classes() -> None:
    only_normals = pd.DataFrame({"bin": [1, 5], "positives": [0, 0], "negatives": [10, 3]})
    assert summaries.curves_from_bins(only_normals) is None
    assert summaries.curves_from_bins(only_normals.iloc[0:0]) is None


def moments_frame() -> pd.DataFrame:
    """Per-class moments where v14 separates strongly (negative) and v4 mildly (positive)."""
    rows = []
    for label, n, shift in ((0, 1000, 0.0), (1, 40, 1.0), (None, 300, 0.0)):
        row: dict[str, object] = {"label": label, "rows": n, "amount_mean": 50.0}
        for v in V_COLUMNS:
            row[f"{v}_mean"] = 0.0
            row[f"{v}_std"] = 1.0
        row["v14_mean"] = -4.0 * shift
        row["v4_mean"] = 0.5 * shift
        rows.append(row)
    return pd.DataFrame(rows)


def test_feature_separation_ranks_by_standardised_difference() -> None:
    separation = summaries.feature_separation(moments_frame())
    assert list(separation["feature"][:2]) == ["v14", "v4"]
    assert separation.iloc[0]["effect"] == pytest.approx(-4.0)
    assert separation.iloc[1]["effect"] == pytest.approx(0.5)
    assert len(separation) == len(V_COLUMNS)


def test_feature_separation_is_empty_without_two_labelled_classes() -> None:
    no_fraud = moments_frame()[lambda f: f["label"] != 1]
    assert summaries.feature_separation(no_fraud).empty


def test_class_balance_names_classes_and_shares() -> None:
    balance = summaries.class_balance(moments_frame()).set_index("class")
    assert balance.loc["fraud", "rows"] == 40
    assert balance.loc["unlabelled", "share"] == pytest.approx(300 / 1340)
    assert balance.loc["fraud", "share_of_labelled"] == pytest.approx(40 / 1040)
    assert math.isnan(balance.loc["unlabelled", "share_of_labelled"])


def test_amount_bins_tile_zero_to_the_log_max_then_overflow() -> None:
    edges = [summaries.amount_bin_edges(b) for b in range(1, AMOUNT_BINS + 2)]
    assert edges[0][0] == 0.0
    for (_, high), (low, _) in itertools.pairwise(edges):
        assert high == pytest.approx(low)
    assert edges[AMOUNT_BINS - 1][1] == pytest.approx(math.expm1(AMOUNT_LOG_MAX))
    assert edges[-1][1] == math.inf


def counts_frame() -> pd.DataFrame:
    """`amount_and_hour_counts` cells: (label, amount bin, hour) with rows and amount."""
    return pd.DataFrame(
        {
            "label": [0, 0, 1, 1, 0],
            "amount_bin": [3, 3, 10, 10, 5],
            "hour": [2, 14, 2, 3, 14],
            "rows": [30, 50, 6, 4, 10],
            "amount": [300.0, 500.0, 600.0, 400.0, 700.0],
        }
    )


def test_amount_distribution_shares_sum_to_one_per_class() -> None:
    distribution = summaries.amount_distribution(counts_frame())
    assert set(distribution["class"]) == {"normal", "fraud"}
    assert distribution.groupby("class")["share"].sum().tolist() == [1.0, 1.0]
    normal = distribution[distribution["class"] == "normal"].set_index("amount_bin")
    assert normal.loc[3, "rows"] == 80 and normal.loc[3, "share"] == pytest.approx(80 / 90)
    fraud = distribution.set_index("class").loc["fraud"]
    assert fraud["low"] == pytest.approx(math.expm1(9 * AMOUNT_LOG_MAX / AMOUNT_BINS))


def test_hour_of_day_fraud_rate_per_hour() -> None:
    hours = summaries.hour_of_day(counts_frame())
    rate = hours.drop_duplicates("hour").set_index("hour")["fraud_rate"]
    assert rate[2] == pytest.approx(6 / 36)
    assert rate[3] == 1.0
    assert rate[14] == 0.0
    normal = hours[hours["class"] == "normal"].set_index("hour")["share"]
    assert normal[2] == pytest.approx(30 / 90)
    assert normal[14] == pytest.approx(60 / 90)


def test_activity_split_and_rate() -> None:
    start = pd.Timestamp("2025-09-20T10:00Z")
    activity = pd.DataFrame(
        {
            "minute": [start, start + pd.Timedelta(minutes=1), pd.NaT],
            "scored": [60, 60, 120],
            "flagged": [1, 0, 1],
            "first_scored": [start, start, start],
            "last_scored": [start, start, start + pd.Timedelta(seconds=120)],
        }
    )
    per_minute, totals = summaries.split_activity(activity)
    assert len(per_minute) == 2
    assert totals is not None
    assert summaries.scoring_rate_per_second(totals) == pytest.approx(1.0)
    _, none = summaries.split_activity(activity.iloc[0:0])
    assert none is None


def test_class_name() -> None:
    assert [summaries.class_name(v) for v in (1, 0, None, float("nan"), 1.0)] == [
        "fraud",
        "normal",
        "unlabelled",
        "unlabelled",
        "fraud",
    ]
