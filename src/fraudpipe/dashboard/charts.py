"""Plotly figures for the dashboard pages, built from the frames in `summaries` (no I/O).

Each function takes a non-empty frame; the pages decide what to say when there is no data.
Figures are built from graph objects rather than plotly.express, which spends a few hundred
milliseconds per figure on argument processing: several times a page's SQL on a busy machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fraudpipe.dashboard.summaries import ScoreCurves

OUTCOME_COLORS: Final = {"caught": "#2ca02c", "missed": "#d62728", "false alarms": "#ff7f0e"}
CLASS_COLORS: Final = {"fraud": "#d62728", "normal": "#1f77b4", "unlabelled": "#7f7f7f"}
HEIGHT: Final = 340
DASHES: Final = ("solid", "dot", "dash", "dashdot", "longdash")


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
    """Flagged vs labelled fraud rate per period, one pair of lines per model version."""
    fig = go.Figure()
    for version in sorted(int(v) for v in history["model_version"].unique()):
        rows = history[history["model_version"] == version]
        dash = DASHES[version % len(DASHES)]
        for column, name, color in (
            ("flagged_rate", "flagged", "#1f77b4"),
            ("fraud_rate", "labelled fraud", "#d62728"),
        ):
            fig.add_scatter(
                x=rows["period"],
                y=rows[column],
                mode="lines+markers",
                name=f"{name}, v{version}",
                line={"color": color, "dash": dash},
            )
    fig.update_yaxes(title_text="share of transactions", tickformat=".2%")
    return _layout(fig, "Flagged vs labelled fraud rate")


def outcomes_over_time(history: pd.DataFrame) -> go.Figure:
    """Caught, missed and false alarms per period (stacked; hover names the version)."""
    fig = go.Figure()
    versions = _version_label(history)
    for column, name in (
        ("caught", "caught"),
        ("missed", "missed"),
        ("false_alarms", "false alarms"),
    ):
        fig.add_bar(
            x=history["period"],
            y=history[column],
            name=name,
            marker_color=OUTCOME_COLORS[name],
            customdata=versions,
            hovertemplate="%{x}<br>%{y} " + name + " (%{customdata})<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="transactions")
    return _layout(fig, "Caught / missed / false alarms (labelled transactions)")


def amounts_over_time(history: pd.DataFrame) -> go.Figure:
    """Amounts flagged for review, caught and missed per period."""
    summed = history.groupby("period", as_index=False)[
        ["amount_flagged", "amount_caught", "amount_missed"]
    ].sum()
    fig = go.Figure()
    for column, color in (
        ("amount_flagged", "#1f77b4"),
        ("amount_caught", "#2ca02c"),
        ("amount_missed", "#d62728"),
    ):
        fig.add_scatter(
            x=summed["period"],
            y=summed[column],
            mode="lines+markers",
            name=column.removeprefix("amount_"),
            line_color=color,
        )
    fig.update_yaxes(title_text="amount")
    return _layout(fig, "Amounts at risk")


def class_balance(balance: pd.DataFrame) -> go.Figure:
    """Rows per class."""
    fig = go.Figure(
        go.Bar(
            x=balance["class"],
            y=balance["rows"],
            text=balance["rows"],
            marker_color=[CLASS_COLORS[c] for c in balance["class"]],
        )
    )
    fig.update_yaxes(title_text="rows")
    return _layout(fig, "Class balance")


def _amount_range(low: float, high: float) -> str:
    if math.isinf(high):
        return f"≥ {low:,.0f}"
    digits = 2 if high < 10 else 0
    return f"{low:,.{digits}f}–{high:,.{digits}f}"


def amount_distribution(distribution: pd.DataFrame) -> go.Figure:
    """Share of each class per amount bin (log-spaced bins)."""
    frame = distribution.sort_values("low")
    labels = [_amount_range(lo, hi) for lo, hi in zip(frame["low"], frame["high"], strict=True)]
    frame = frame.assign(amount=labels)
    fig = go.Figure()
    for name, rows in frame.groupby("class"):
        fig.add_bar(
            x=rows["amount"],
            y=rows["share"],
            name=str(name),
            marker_color=CLASS_COLORS.get(str(name)),
            customdata=rows["rows"],
            hovertemplate="%{x}: %{y:.2%} of class (%{customdata} rows)",
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=list(dict.fromkeys(labels)))
    fig.update_yaxes(tickformat=".1%", title_text="share of class")
    return _layout(fig, "Amount by class (log-spaced bins)")


def feature_separation(separation: pd.DataFrame) -> go.Figure:
    """Standardised mean difference (fraud minus normal) per V-feature, strongest first."""
    fig = go.Figure(
        go.Bar(
            x=separation["feature"],
            y=separation["effect"],
            marker={
                "color": separation["effect"],
                "colorscale": "RdBu_r",
                "cmid": 0,
                "showscale": True,
            },
            customdata=separation[["fraud_mean", "normal_mean"]],
            hovertemplate="%{x}: %{y:.2f} SDs<br>fraud mean %{customdata[0]:.2f}, "
            "normal mean %{customdata[1]:.2f}<extra></extra>",
        )
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
    ordered = versions.sort_values("created_at")
    fig = go.Figure()
    for metric in metrics:
        rows = ordered.dropna(subset=[metric])
        fig.add_scatter(
            x=rows["created_at"],
            y=rows[metric],
            mode="lines+markers",
            name=metric.removeprefix("holdout_"),
            customdata=rows["version"],
            hovertemplate="v%{customdata}: %{y:.4f}",
        )
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
    frame = frame.iloc[::-1]
    fig = go.Figure(
        go.Bar(
            x=frame["coefficient"],
            y=frame["feature"],
            orientation="h",
            marker={
                "color": frame["coefficient"],
                "colorscale": "RdBu_r",
                "cmid": 0,
                "showscale": True,
            },
        )
    )
    fig.update_xaxes(title_text="log-odds per standard deviation")
    _layout(fig, "What drives the score (largest coefficients)")
    fig.update_layout(height=max(HEIGHT, 22 * len(frame)))
    return fig


def alert_tradeoff(curve: pd.DataFrame, threshold: float, budget: int | None) -> go.Figure:
    """Recall and precision against alerts a day, with the version's threshold marked.

    Args:
        curve: `fraudpipe.model.thresholds.alert_tradeoff`'s frame.
        threshold: The version's alert threshold.
        budget: The review budget it was fitted to, if it was.
    """
    fig = go.Figure()
    for metric in ("recall", "precision"):
        fig.add_trace(
            go.Scatter(x=curve["alerts_per_day"], y=curve[metric], mode="lines", name=metric)
        )
    within = curve[curve["threshold"] >= threshold]
    if not within.empty:
        point = within.iloc[-1]
        fig.add_trace(
            go.Scatter(
                x=[point["alerts_per_day"]] * 2,
                y=[point["recall"], point["precision"]],
                mode="markers",
                marker={"size": 11, "symbol": "diamond"},
                name=f"threshold {threshold:.4g}",
            )
        )
    if budget is not None:
        fig.add_vline(x=budget, line_dash="dot", annotation_text=f"budget {budget:,}/day")
    fig.update_xaxes(type="log", title="alerts a day (holdout)")
    fig.update_yaxes(range=[0, 1.02])
    return _layout(fig, "Alerts a day against recall and precision")


#: Where a label came from, in the order the bars stack, with "not known yet" on top.
LABEL_PARTS: Final = (
    ("dataset", "source label, matured"),
    ("chargeback", "chargeback"),
    ("analyst", "analyst"),
    ("awaiting", "not known yet"),
)


def label_arrival(arrival: pd.DataFrame) -> go.Figure:
    """Per event day, the transactions whose label is known now, by where it came from."""
    fig = go.Figure()
    for column, name in LABEL_PARTS:
        fig.add_trace(go.Bar(x=arrival["day"], y=arrival[column], name=name))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="transactions")
    return _layout(fig, "Labels known now, per day of the transactions")


def live_performance(
    performance: pd.DataFrame, metric: str, promotions: Sequence[tuple[object, int]] = ()
) -> go.Figure:
    """``metric`` per day, one line per version and role, with the promotions marked.

    Args:
        performance: `summaries.live_performance`'s frame.
        metric: One of its columns (``precision``, ``recall``, ``average_precision``).
        promotions: (when, version) of each move of the champion alias.
    """
    fig = go.Figure()
    for (version, role), part in performance.groupby(["model_version", "role"], sort=True):
        fig.add_trace(
            go.Scatter(
                x=part["day"],
                y=part[metric],
                mode="lines+markers",
                name=f"v{version}" + (" (shadow)" if role == "shadow" else ""),
                line={"dash": "dot"} if role == "shadow" else {},
            )
        )
    for when, version in promotions:
        fig.add_vline(x=when, line_dash="dash", line_color="grey")
        fig.add_annotation(
            x=when, y=1.0, yref="paper", text=f"v{version} champion", showarrow=False
        )
    fig.update_yaxes(range=[0, 1.02], title=metric.replace("_", " "))
    return _layout(fig, f"Live {metric.replace('_', ' ')} per day (labels known now)")


def drift_heatmap(matrix: pd.DataFrame, threshold: float) -> go.Figure:
    """PSI per column (rows) and day (columns); the colour scale turns at ``threshold``."""
    top = max(2 * threshold, float(np.nanmax(matrix.to_numpy())) if matrix.size else 0.0)
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=[str(d) for d in matrix.columns],
            y=list(matrix.index),
            zmin=0.0,
            zmax=top,
            colorscale=[
                [0.0, "#f7fbff"],
                [threshold / top / 2, "#c6dbef"],
                [threshold / top, "#fdae61"],
                [1.0, "#a50026"],
            ],
            colorbar={"title": "PSI"},
            hovertemplate="%{y} on %{x}: PSI %{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(type="category")  # one cell per day, not a time axis
    _layout(fig, f"Drift per column and day (PSI; alert above {threshold:g})")
    fig.update_layout(height=max(HEIGHT, 16 * len(matrix) + 120))
    return fig


def alert_rates(rates: pd.DataFrame) -> go.Figure:
    """Each day's alert rate per version against the rate its threshold was placed for."""
    fig = go.Figure()
    for version, part in rates.groupby("model_version", sort=True):
        fig.add_trace(
            go.Scatter(
                x=part["day"], y=part["alert_rate"], mode="lines+markers", name=f"v{version}"
            )
        )
        fig.add_trace(
            go.Scatter(
                x=part["day"],
                y=part["expected_alert_rate"],
                mode="lines",
                line={"dash": "dot"},
                name=f"v{version} expected",
            )
        )
    fig.update_yaxes(title="alerts / transactions", tickformat=".2%")
    return _layout(fig, "Alert rate per day against what the threshold expects")


def score_distribution(
    cdfs: pd.DataFrame, reference_edges: Sequence[float], reference_shares: Sequence[float]
) -> go.Figure:
    """Each day's share of scores below each edge, against the version's training data.

    Args:
        cdfs: `summaries.score_cdfs`'s frame.
        reference_edges: The reference's score bin edges (`BinnedColumn.edges`).
        reference_shares: Its share in each bin (`BinnedColumn.shares`).
    """
    fig = go.Figure()
    days = sorted(cdfs["day"].unique())
    for i, (day, part) in enumerate(cdfs.groupby("day", sort=True)):
        shade = 0.25 + 0.75 * i / max(len(days) - 1, 1)
        fig.add_trace(
            go.Scatter(
                x=part["edge"],
                y=part["share_below"],
                mode="lines",
                name=str(day),
                line={"color": f"rgba(31, 119, 180, {shade:.2f})"},
            )
        )
    below = np.cumsum(np.asarray(reference_shares, dtype=np.float64))[:-1]
    fig.add_trace(
        go.Scatter(
            x=list(reference_edges),
            y=below,
            mode="lines+markers",
            name="training data",
            line={"color": "black", "dash": "dash"},
        )
    )
    fig.update_xaxes(type="log", title="score")
    fig.update_yaxes(range=[0, 1.02], title="share of transactions below")
    return _layout(fig, "Score distribution per day against the training data")
