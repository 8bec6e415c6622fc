"""Plotly figures for the dashboard pages, built from the frames in `summaries` (no I/O).

Each function takes a non-empty frame; the pages decide what to say when there is no data.
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fraudpipe.dashboard.summaries import ScoreCurves

OUTCOME_COLORS: Final = {"caught": "#2ca02c", "missed": "#d62728", "false alarms": "#ff7f0e"}
CLASS_COLORS: Final = {"fraud": "#d62728", "normal": "#1f77b4", "unlabelled": "#7f7f7f"}
HEIGHT: Final = 340


def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title=title, height=HEIGHT, margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend_title=""
    )
    return fig


def _version_label(frame: pd.DataFrame) -> pd.Series:
    return "v" + frame["model_version"].astype("int64").astype(str)


def scoring_activity(per_minute: pd.DataFrame) -> go.Figure:
    """Predictions per minute (bars) and p95 end-to-end latency (line, right axis)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=per_minute["minute"], y=per_minute["scored"], name="scored / min")
    fig.add_bar(x=per_minute["minute"], y=per_minute["flagged"], name="alerts / min")
    fig.add_scatter(
        x=per_minute["minute"],
        y=per_minute["latency_p95_ms"],
        name="p95 latency (ms)",
        mode="lines+markers",
        secondary_y=True,
    )
    fig.update_yaxes(title_text="predictions", secondary_y=False)
    fig.update_yaxes(title_text="ms", secondary_y=True)
    return _layout(fig, "Scoring in the latest hour of activity")


def rates_over_time(history: pd.DataFrame) -> go.Figure:
    """Flagged rate vs labelled fraud rate per period, one pair of lines per model version."""
    long = history.assign(version=_version_label(history)).melt(
        id_vars=["period", "version"],
        value_vars=["flagged_rate", "fraud_rate"],
        var_name="rate",
        value_name="value",
    )
    long["rate"] = long["rate"].map({"flagged_rate": "flagged", "fraud_rate": "labelled fraud"})
    fig = px.line(long, x="period", y="value", color="rate", line_dash="version", markers=True)
    fig.update_yaxes(title_text="share of transactions", tickformat=".2%")
    return _layout(fig, "Flagged vs labelled fraud rate")


def outcomes_over_time(history: pd.DataFrame) -> go.Figure:
    """Caught, missed and false alarms per period (stacked; hover names the version)."""
    long = history.assign(version=_version_label(history)).rename(
        columns={"false_alarms": "false alarms"}
    )
    long = long.melt(
        id_vars=["period", "version"],
        value_vars=["caught", "missed", "false alarms"],
        var_name="outcome",
        value_name="transactions",
    )
    fig = px.bar(
        long,
        x="period",
        y="transactions",
        color="outcome",
        hover_data=["version"],
        color_discrete_map=OUTCOME_COLORS,
    )
    return _layout(fig, "Caught / missed / false alarms (labelled transactions)")


def amounts_over_time(history: pd.DataFrame) -> go.Figure:
    """Amounts flagged for review, caught and missed per period."""
    summed = history.groupby("period", as_index=False)[
        ["amount_flagged", "amount_caught", "amount_missed"]
    ].sum()
    long = summed.melt(id_vars="period", var_name="amount", value_name="total")
    long["amount"] = long["amount"].str.removeprefix("amount_")
    fig = px.line(long, x="period", y="total", color="amount", markers=True)
    fig.update_yaxes(title_text="amount")
    return _layout(fig, "Amounts at risk")


def class_balance(balance: pd.DataFrame) -> go.Figure:
    """Rows per class."""
    fig = px.bar(
        balance, x="class", y="rows", color="class", text="rows", color_discrete_map=CLASS_COLORS
    )
    fig.update_layout(showlegend=False)
    return _layout(fig, "Class balance")


def amount_distribution(distribution: pd.DataFrame) -> go.Figure:
    """Share of each class per amount bin (log-spaced bins)."""
    frame = distribution.assign(
        amount=[
            f"{lo:,.0f}–{hi:,.0f}"
            for lo, hi in zip(distribution["low"], distribution["high"], strict=True)
        ]
    )
    fig = px.bar(
        frame,
        x="amount",
        y="share",
        color="class",
        barmode="group",
        hover_data=["rows"],
        color_discrete_map=CLASS_COLORS,
        category_orders={"amount": list(dict.fromkeys(frame.sort_values("low")["amount"]))},
    )
    fig.update_yaxes(tickformat=".1%", title_text="share of class")
    return _layout(fig, "Amount by class (log-spaced bins)")


def feature_separation(separation: pd.DataFrame) -> go.Figure:
    """Standardised mean difference (fraud minus normal) per V-feature, strongest first."""
    fig = px.bar(
        separation,
        x="feature",
        y="effect",
        color="effect",
        color_continuous_scale="RdBu_r",
        color_continuous_midpoint=0,
        hover_data=["fraud_mean", "normal_mean"],
    )
    fig.update_yaxes(title_text="fraud − normal (pooled SDs)")
    return _layout(fig, "V-features that separate fraud")


def hour_of_day(hours: pd.DataFrame) -> go.Figure:
    """Share of each class by hour of day (bars) and the fraud rate per hour (line)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, group in hours.groupby("class"):
        fig.add_bar(
            x=group["hour"],
            y=group["share"],
            name=str(name),
            marker_color=CLASS_COLORS.get(str(name)),
        )
    rate = hours.drop_duplicates("hour").sort_values("hour")
    fig.add_scatter(
        x=rate["hour"], y=rate["fraud_rate"], name="fraud rate", mode="lines", secondary_y=True
    )
    fig.update_yaxes(title_text="share of class", tickformat=".1%", secondary_y=False)
    fig.update_yaxes(title_text="fraud rate", tickformat=".2%", secondary_y=True)
    fig.update_xaxes(title_text="hour of day (UTC)", dtick=2)
    return _layout(fig, "Time-of-day pattern")


def holdout_metrics(versions: pd.DataFrame, metrics: list[str]) -> go.Figure:
    """Holdout metrics of each registered version against its registration time."""
    long = versions.melt(
        id_vars=["version", "created_at"], value_vars=metrics, var_name="metric", value_name="v"
    ).dropna(subset=["v"])
    fig = px.line(long, x="created_at", y="v", color="metric", markers=True, hover_data=["version"])
    fig.update_yaxes(title_text="holdout value", range=[0, 1.02])
    return _layout(fig, "Holdout metrics by version")


def pr_curve(curves: ScoreCurves, title: str) -> go.Figure:
    """Precision against recall, with the fraud base rate."""
    points = curves.points.dropna(subset=["precision"])
    fig = go.Figure(
        go.Scatter(
            x=points["recall"],
            y=points["precision"],
            mode="lines",
            line_shape="hv",
            name=f"AP ≈ {curves.average_precision:.3f}",
            customdata=points["threshold"],
            hovertemplate="recall %{x:.3f}<br>precision %{y:.3f}<br>score ≥ %{customdata:.3f}",
        )
    )
    base = curves.positives / (curves.positives + curves.negatives)
    fig.add_hline(y=base, line_dash="dot", annotation_text="base rate")
    fig.update_xaxes(title_text="recall", range=[0, 1])
    fig.update_yaxes(title_text="precision", range=[0, 1.02])
    fig.update_layout(showlegend=True)
    return _layout(fig, title)


def roc_curve(curves: ScoreCurves, title: str) -> go.Figure:
    """Recall against false-positive rate, with the chance diagonal."""
    points = curves.points
    fig = go.Figure(
        go.Scatter(
            x=[0.0, *points["fpr"]],
            y=[0.0, *points["recall"]],
            mode="lines",
            name=f"AUC ≈ {curves.roc_auc:.3f}",
        )
    )
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line_dash="dot", name="chance")
    fig.update_xaxes(title_text="false-positive rate", range=[0, 1])
    fig.update_yaxes(title_text="recall", range=[0, 1.02])
    return _layout(fig, title)


def coefficients(coefs: pd.DataFrame, top: int = 20) -> go.Figure:
    """The largest logistic-regression coefficients (on scaled features), signed."""
    frame = coefs.reindex(coefs["coefficient"].abs().sort_values(ascending=False).index).head(top)
    fig = px.bar(
        frame.iloc[::-1],
        x="coefficient",
        y="feature",
        orientation="h",
        color="coefficient",
        color_continuous_scale="RdBu_r",
        color_continuous_midpoint=0,
    )
    fig.update_xaxes(title_text="log-odds per standard deviation")
    _layout(fig, "What drives the score (largest coefficients)")
    fig.update_layout(height=max(HEIGHT, 22 * len(frame)))
    return fig
