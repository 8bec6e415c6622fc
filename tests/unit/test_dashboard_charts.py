"""Each Plotly figure builds from the derived tables and plots what it says it plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_dashboard_summaries import counts_frame, hourly_rows, moments_frame

from fraudpipe.dashboard import charts, summaries

pytestmark = pytest.mark.unit


def test_history_figures_plot_each_series() -> None:
    history = summaries.history(hourly_rows(), "hour")
    rates = charts.rates_over_time(history)
    # Two rates x two versions.
    assert {t.name for t in rates.data} == {
        "flagged, v1",
        "flagged, v2",
        "labelled fraud, v1",
        "labelled fraud, v2",
    }
    outcomes = charts.outcomes_over_time(history)
    assert {t.name for t in outcomes.data} == {"caught", "missed", "false alarms"}
    assert sum(sum(t.y) for t in outcomes.data) == 2 + 1 + 2 + 1  # caught + missed + alarms
    amounts = charts.amounts_over_time(history)
    assert {t.name for t in amounts.data} == {"flagged", "caught", "missed"}


def test_eda_figures() -> None:
    moments = moments_frame()
    balance = charts.class_balance(summaries.class_balance(moments))
    assert list(balance.data[0].x) == ["normal", "fraud", "unlabelled"]
    assert list(balance.data[0].y) == [1000, 40, 300]
    separation = charts.feature_separation(summaries.feature_separation(moments))
    assert list(separation.data[0].x[:2]) == ["v14", "v4"]
    distribution = charts.amount_distribution(summaries.amount_distribution(counts_frame()))
    assert {t.name for t in distribution.data} == {"normal", "fraud"}
    hours = charts.hour_of_day(summaries.hour_of_day(counts_frame()))
    assert [t.name for t in hours.data][-1] == "fraud rate"


def test_curve_and_model_figures() -> None:
    bins = pd.DataFrame({"bin": [20, 150, 190], "positives": [1, 3, 6], "negatives": [80, 5, 1]})
    curves = summaries.curves_from_bins(bins)
    assert curves is not None
    assert charts.pr_curve(curves, "pr").data[0].name.startswith("AP ≈")
    assert charts.roc_curve(curves, "roc").data[0].x[0] == 0.0
    coefs = pd.DataFrame({"feature": [f"v{i}" for i in range(30)], "coefficient": np.arange(30.0)})
    figure = charts.coefficients(coefs, top=5)
    assert list(figure.data[0].y) == ["v25", "v26", "v27", "v28", "v29"]
    versions = pd.DataFrame(
        {
            "version": [2, 1],
            "created_at": pd.to_datetime(["2025-10-02", "2025-10-01"]),
            "holdout_average_precision": [0.8, 0.7],
            "holdout_roc_auc": [0.97, float("nan")],
        }
    )
    metrics = charts.holdout_metrics(versions, ["holdout_average_precision", "holdout_roc_auc"])
    assert sum(len(t.x) for t in metrics.data) == 3  # the NaN point is dropped


def test_drift_figures() -> None:
    from datetime import date

    days = [date(2025, 9, 20), date(2025, 9, 21)]
    drift = pd.DataFrame(
        {
            "day": [d for d in days for _ in range(3)] + [days[1]] * 3,
            "batch_id": ["a"] * 3 + ["b"] * 6,
            "model_version": [1, 1, 1, 1, 1, 1, 2, 2, 2],
            "feature": ["amount", "v14", "score"] * 3,
            "psi": [0.01, 0.02, 0.03, 0.5, 0.6, 0.7, 0.01, 0.3, 0.02],
            "rows": [100] * 3 + [10] * 3 + [90] * 3,
        }
    )
    matrix = summaries.drift_matrix(drift)
    # Day two is read for v2, which scored most of it.
    assert matrix.to_dict() == {
        days[0]: {"amount": 0.01, "v14": 0.02, "score": 0.03},
        days[1]: {"amount": 0.01, "v14": 0.3, "score": 0.02},
    }
    heatmap = charts.drift_heatmap(matrix, 0.2)
    assert list(heatmap.data[0].y) == ["amount", "v14", "score"]
    assert heatmap.data[0].zmax == pytest.approx(0.4)
    rates = pd.DataFrame(
        {
            "day": days,
            "model_version": [1, 1],
            "alert_rate": [0.01, 0.02],
            "expected_alert_rate": [0.01, 0.01],
        }
    )
    assert [t.name for t in charts.alert_rates(rates).data] == ["v1", "v1 expected"]


def test_live_performance_figures() -> None:
    from datetime import date

    d1, d2 = date(2025, 9, 20), date(2025, 9, 21)
    bins = pd.DataFrame(
        {
            "day": [d1, d1, d2, d2, d2],
            "model_version": [1, 1, 1, 2, 2],
            "role": ["champion", "champion", "shadow", "champion", "champion"],
            "bin": [200, 10, 200, 190, 5],
            "positives": [3, 1, 2, 4, 0],
            "negatives": [1, 95, 0, 1, 100],
            "caught": [3, 0, 2, 4, 0],
            "false_alarms": [1, 0, 0, 1, 0],
            "amount_caught": [300.0, 0.0, 80.0, 400.0, 0.0],
            "amount_missed": [0.0, 50.0, 0.0, 0.0, 0.0],
        }
    )
    performance = summaries.live_performance(bins)
    first = performance.iloc[0]
    assert (first["labelled"], first["frauds"], first["alerts"], first["caught"]) == (100, 4, 4, 3)
    assert (first["precision"], first["recall"]) == (0.75, 0.75)
    assert first["amount_missed"] == 50.0
    assert summaries.champion_takeovers(performance) == [(d2, 2)]
    figure = charts.live_performance(performance, "recall", [(d2, 2)])
    assert [t.name for t in figure.data] == ["v1", "v1 (shadow)", "v2"]


def test_score_distribution_figure() -> None:
    from datetime import date

    edges = (0.001, 0.01, 0.1)
    buckets = pd.DataFrame(
        {
            "day": [date(2025, 9, 20)] * 3 + [date(2025, 9, 21)],
            "bucket": [0, 1, 3, 2],
            "scored": [50, 30, 20, 10],
        }
    )
    cdfs = summaries.score_cdfs(buckets, edges)
    first = cdfs[cdfs["day"] == date(2025, 9, 20)]["share_below"].tolist()
    assert first == [0.5, 0.8, 0.8]
    assert cdfs[cdfs["day"] == date(2025, 9, 21)]["share_below"].tolist() == [0.0, 0.0, 1.0]
    figure = charts.score_distribution(cdfs, edges, (0.4, 0.3, 0.2, 0.1))
    reference = figure.data[-1]
    assert reference.name == "training data"
    assert list(reference.y) == pytest.approx([0.4, 0.7, 0.9])
