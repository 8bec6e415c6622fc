"""What the pages show, derived from the small frames `queries` returns (pure pandas, no I/O).

Rates are NaN where their denominator is zero (no labelled rows, nothing flagged), never 0: a
chart should show a gap, not a perfect score, when there is nothing to measure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd

from fraudpipe.adapters.postgres.dashboard_queries import (
    AMOUNT_BINS,
    AMOUNT_LOG_MAX,
    SCORE_BINS,
)
from fraudpipe.columns import V_COLUMNS
from fraudpipe.model.drift import PROFILED, SCORE

COUNT_COLUMNS: Final = [
    "scored",
    "flagged",
    "labelled",
    "frauds",
    "caught",
    "missed",
    "false_alarms",
    "amount",
    "amount_flagged",
    "amount_caught",
    "amount_missed",
]
CLASS_NAMES: Final = {1: "fraud", 0: "normal"}
UNLABELLED: Final = "unlabelled"


def class_name(label: object) -> str:
    """``fraud``, ``normal`` or ``unlabelled`` for a label value (null means not labelled yet)."""
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return UNLABELLED
    return CLASS_NAMES[int(label)]  # type: ignore[call-overload]


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator.astype("float64") / denominator.astype("float64").where(denominator > 0)


def with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Add flagged rate, labelled fraud rate, precision and recall to summed counts."""
    return frame.assign(
        flagged_rate=_ratio(frame["flagged"], frame["scored"]),
        fraud_rate=_ratio(frame["frauds"], frame["labelled"]),
        precision=_ratio(frame["caught"], frame["caught"] + frame["false_alarms"]),
        recall=_ratio(frame["caught"], frame["caught"] + frame["missed"]),
    )


def select_versions(hourly: pd.DataFrame, versions: Sequence[int] | None) -> pd.DataFrame:
    """Rows of the chosen model versions (all when ``versions`` is None)."""
    if versions is None:
        return hourly
    return hourly[hourly["model_version"].isin(list(versions))]


def history(hourly: pd.DataFrame, period: Literal["hour", "day"]) -> pd.DataFrame:
    """`fraud_by_hour` rows summed per period (UTC hour or day) and model version, with rates."""
    if hourly.empty:
        return with_rates(pd.DataFrame(columns=["period", "model_version", *COUNT_COLUMNS]))
    start = hourly["hour"] if period == "hour" else hourly["hour"].dt.floor("D")
    summed = (
        hourly.assign(period=start)
        .groupby(["period", "model_version"], as_index=False)[COUNT_COLUMNS]
        .sum()
    )
    return with_rates(summed)


def version_totals(hourly: pd.DataFrame) -> pd.DataFrame:
    """One row per model version: its counts and amounts over the whole window, with rates."""
    if hourly.empty:
        return with_rates(pd.DataFrame(columns=["model_version", *COUNT_COLUMNS]))
    return with_rates(hourly.groupby("model_version", as_index=False)[COUNT_COLUMNS].sum())


def overall_totals(hourly: pd.DataFrame) -> dict[str, float]:
    """Counts and rates over every selected row (each prediction counts once)."""
    sums = {c: float(hourly[c].sum()) if not hourly.empty else 0.0 for c in COUNT_COLUMNS}
    row = with_rates(pd.DataFrame([sums])).iloc[0]
    return {str(k): float(v) for k, v in row.items()}


def split_activity(activity: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """`scoring_activity` rows as (per minute, totals row or None when nothing was scored)."""
    totals = activity[activity["minute"].isna()]
    per_minute = activity[activity["minute"].notna()]
    if totals.empty or int(totals["scored"].iloc[0]) == 0:
        return per_minute, None
    return per_minute, totals.iloc[0]


def scoring_rate_per_second(totals: pd.Series) -> float:
    """Predictions per second between the first and last prediction of the period."""
    span = (totals["last_scored"] - totals["first_scored"]).total_seconds()
    return float(totals["scored"]) / span if span > 0 else float("nan")


@dataclass(frozen=True)
class ScoreCurves:
    """PR and ROC curves from binned scores, with the areas under them.

    Attributes:
        points: One row per threshold (a bin's lower edge), highest threshold first: columns
            ``threshold``, ``tp``, ``fp``, ``precision``, ``recall``, ``fpr``.
        positives: Labelled frauds counted.
        negatives: Labelled normals counted.
        average_precision: Sum over thresholds of precision times recall gained.
        roc_auc: Trapezoidal area under the ROC points.
    """

    points: pd.DataFrame
    positives: int
    negatives: int
    average_precision: float
    roc_auc: float


def curves_from_bins(bins: pd.DataFrame) -> ScoreCurves | None:
    """PR/ROC curves from `score_bins`; None unless both classes are present.

    Scores are binned at 1/SCORE_BINS, so the areas are exact up to ties inside a bin.
    """
    if bins.empty:
        return None
    counts = (
        bins.set_index("bin")[["positives", "negatives"]]
        .reindex(range(SCORE_BINS, 0, -1), fill_value=0)
        .astype("int64")
    )
    positives, negatives = int(counts["positives"].sum()), int(counts["negatives"].sum())
    if positives == 0 or negatives == 0:
        return None
    tp = counts["positives"].cumsum().to_numpy()
    fp = counts["negatives"].cumsum().to_numpy()
    recall = tp / positives
    fpr = fp / negatives
    flagged = tp + fp
    precision = np.divide(tp, flagged, out=np.full(len(tp), np.nan), where=flagged > 0)
    recall_gain = np.diff(np.concatenate([[0.0], recall]))
    average_precision = float(np.nansum(recall_gain * precision))
    roc_x = np.concatenate([[0.0], fpr])
    roc_y = np.concatenate([[0.0], recall])
    roc_auc = float(np.sum(np.diff(roc_x) * (roc_y[1:] + roc_y[:-1]) / 2))
    points = pd.DataFrame(
        {
            "threshold": (counts.index.to_numpy() - 1) / SCORE_BINS,
            "tp": tp,
            "fp": fp,
            "precision": precision,
            "recall": recall,
            "fpr": fpr,
        }
    )
    return ScoreCurves(points, positives, negatives, average_precision, roc_auc)


def class_balance(moments: pd.DataFrame) -> pd.DataFrame:
    """Rows per class (fraud, normal, unlabelled), share of all rows and of labelled rows."""
    frame = pd.DataFrame(
        {
            "class": [class_name(v) for v in moments["label"]],
            "rows": moments["rows"].astype("int64"),
        }
    )
    labelled = frame.loc[frame["class"] != UNLABELLED, "rows"].sum()
    return frame.assign(
        share=frame["rows"] / frame["rows"].sum() if len(frame) else [],
        share_of_labelled=[
            r / labelled if c != UNLABELLED and labelled else float("nan")
            for c, r in zip(frame["class"], frame["rows"], strict=True)
        ],
    )


def feature_separation(moments: pd.DataFrame) -> pd.DataFrame:
    """How far apart the classes sit on each V-feature, strongest first.

    ``effect`` is the standardised mean difference (Cohen's d with the pooled standard
    deviation): fraud mean minus normal mean, in units of the features' spread. Empty unless
    both classes have at least two labelled rows.
    """
    by_label = {class_name(row["label"]): row for _, row in moments.iterrows()}
    fraud, normal = by_label.get("fraud"), by_label.get("normal")
    if fraud is None or normal is None or fraud["rows"] < 2 or normal["rows"] < 2:
        return pd.DataFrame(
            columns=["feature", "fraud_mean", "normal_mean", "fraud_std", "normal_std", "effect"]
        )
    n1, n0 = float(fraud["rows"]), float(normal["rows"])
    rows = []
    for v in V_COLUMNS:
        s1, s0 = float(fraud[f"{v}_std"]), float(normal[f"{v}_std"])
        pooled = math.sqrt(((n1 - 1) * s1**2 + (n0 - 1) * s0**2) / (n1 + n0 - 2))
        m1, m0 = float(fraud[f"{v}_mean"]), float(normal[f"{v}_mean"])
        rows.append(
            {
                "feature": v,
                "fraud_mean": m1,
                "normal_mean": m0,
                "fraud_std": s1,
                "normal_std": s0,
                "effect": (m1 - m0) / pooled if pooled > 0 else float("nan"),
            }
        )
    frame = pd.DataFrame(rows)
    order = frame["effect"].abs().sort_values(ascending=False).index
    return frame.loc[order].reset_index(drop=True)


def amount_bin_edges(amount_bin: int) -> tuple[float, float]:
    """The amount range ``[low, high)`` of one amount bin of `amount_and_hour_counts`."""
    step = AMOUNT_LOG_MAX / AMOUNT_BINS
    if amount_bin > AMOUNT_BINS:
        return math.expm1(AMOUNT_LOG_MAX), math.inf
    return math.expm1(step * (amount_bin - 1)), math.expm1(step * amount_bin)


def amount_distribution(counts: pd.DataFrame) -> pd.DataFrame:
    """Amount histogram per class from `amount_and_hour_counts`: bin edges, rows, class share."""
    columns = ["class", "amount_bin", "low", "high", "rows", "share"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    frame = counts.assign(
        **{"class": [class_name(v) for v in counts["label"]]},
        amount_bin=counts["amount_bin"].astype("int64"),
    )
    frame = frame.groupby(["class", "amount_bin"], as_index=False).agg(rows=("rows", "sum"))
    edges = [amount_bin_edges(b) for b in frame["amount_bin"]]
    share = frame["rows"] / frame.groupby("class")["rows"].transform("sum")
    out = frame.assign(low=[lo for lo, _ in edges], high=[hi for _, hi in edges], share=share)[
        columns
    ]
    return out.sort_values(["class", "amount_bin"]).reset_index(drop=True)


def hour_of_day(counts: pd.DataFrame) -> pd.DataFrame:
    """Per hour of day (UTC): rows per class, each class's share by hour, and the fraud rate."""
    columns = ["hour", "class", "rows", "share", "fraud_rate"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    frame = counts.assign(
        **{"class": [class_name(v) for v in counts["label"]]},
        hour=counts["hour"].astype("int64"),
    )
    frame = frame.groupby(["hour", "class"], as_index=False).agg(rows=("rows", "sum"))
    share = frame["rows"] / frame.groupby("class")["rows"].transform("sum")
    wide = frame.pivot_table(index="hour", columns="class", values="rows", aggfunc="sum")
    zeros = pd.Series(0, index=wide.index)
    frauds = wide["fraud"].fillna(0) if "fraud" in wide else zeros
    normals = wide["normal"].fillna(0) if "normal" in wide else zeros
    rate = _ratio(frauds, frauds + normals)
    out = frame.assign(share=share, fraud_rate=frame["hour"].map(rate))
    return out[columns].sort_values(["class", "hour"]).reset_index(drop=True)


def shadow_comparison(counts: pd.DataFrame) -> pd.DataFrame:
    """`shadow_counts` as one row per version and role, with precision and recall.

    Columns: ``challenger_version``, ``champion_version``, ``role`` (``champion`` or
    ``challenger``), ``version``, ``scored``, ``labelled``, ``frauds``, and among the labelled
    ``alerts``, ``caught``, ``precision`` and ``recall`` (NaN where undefined: no alert, or no
    fraud).
    """
    rows = []
    for role in ("champion", "challenger"):
        kept = ["challenger_version", "champion_version", "scored", "labelled", "frauds"]
        part = counts[kept].copy()
        part.insert(2, "role", role)
        part.insert(3, "version", counts[f"{role}_version"])
        part["alerts"] = counts[f"{role}_alerts"]
        part["caught"] = counts[f"{role}_caught"]
        rows.append(part)
    frame = pd.concat(rows, ignore_index=True).sort_values(
        ["challenger_version", "champion_version", "role"], ascending=[False, False, False]
    )
    frame["precision"] = _ratio(frame["caught"], frame["alerts"])
    frame["recall"] = _ratio(frame["caught"], frame["frauds"])
    return frame.reset_index(drop=True)


def live_performance(bins: pd.DataFrame) -> pd.DataFrame:
    """`live_performance_bins` per day, version and role: the live metrics of each version.

    Columns: ``day``, ``model_version``, ``role``, ``labelled``, ``frauds``, ``alerts``,
    ``caught``, ``precision``, ``recall`` (at the version's own threshold), ``average_precision``
    (from the score bins, as `curves_from_bins`; NaN without both classes), ``amount_caught``
    and ``amount_missed``.
    """
    rows = []
    for (day, version, role), part in bins.groupby(["day", "model_version", "role"], sort=True):
        curves = curves_from_bins(part)
        frauds = int(part["positives"].sum())
        alerts = int((part["caught"] + part["false_alarms"]).sum())
        caught = int(part["caught"].sum())
        rows.append(
            {
                "day": day,
                "model_version": version,
                "role": role,
                "labelled": frauds + int(part["negatives"].sum()),
                "frauds": frauds,
                "alerts": alerts,
                "caught": caught,
                "average_precision": curves.average_precision if curves else float("nan"),
                "amount_caught": float(part["amount_caught"].sum()),
                "amount_missed": float(part["amount_missed"].sum()),
            }
        )
    frame = pd.DataFrame(rows, columns=LIVE_PERFORMANCE_COLUMNS)
    frame["precision"] = _ratio(frame["caught"], frame["alerts"])
    frame["recall"] = _ratio(frame["caught"], frame["frauds"])
    return frame


def champion_takeovers(performance: pd.DataFrame) -> list[tuple[object, int]]:
    """(first day, version) of each champion after the first, by the days it scored."""
    champions = performance[performance["role"] == "champion"]
    first = (
        champions[["model_version", "day"]]
        .sort_values(["day", "model_version"])
        .drop_duplicates("model_version")
    )
    return [
        (day, int(version))
        for day, version in zip(first["day"].iloc[1:], first["model_version"].iloc[1:], strict=True)
    ]


LIVE_PERFORMANCE_COLUMNS: Final = [
    "day",
    "model_version",
    "role",
    "labelled",
    "frauds",
    "alerts",
    "caught",
    "precision",
    "recall",
    "average_precision",
    "amount_caught",
    "amount_missed",
]


def label_shares(arrival: pd.DataFrame) -> pd.DataFrame:
    """`label_arrival` with ``known`` (labels known now) and its share of the day's rows."""
    frame = arrival.copy()
    frame["known"] = frame["transactions"] - frame["awaiting"]
    frame["share_known"] = _ratio(frame["known"], frame["transactions"])
    return frame


def drift_matrix(drift: pd.DataFrame) -> pd.DataFrame:
    """PSI as a column × day matrix, each day measured for the version that scored most of it.

    Rows are the profiled columns in their profile order (inputs, then ``score``); columns are
    the days, oldest first. Empty when nothing was measured.
    """
    if drift.empty:
        return pd.DataFrame()
    scored = drift[["day", "model_version", "rows"]].drop_duplicates()
    main = scored.sort_values(["day", "rows", "model_version"]).drop_duplicates("day", keep="last")
    kept = drift.merge(main[["day", "model_version"]], on=["day", "model_version"])
    present = set(drift["feature"])
    order = [c for c in (*PROFILED, SCORE) if c in present]
    order += sorted(present - set(order))
    matrix = kept.pivot_table(index="feature", columns="day", values="psi", aggfunc="max")
    return matrix.reindex(order)


def score_cdfs(buckets: pd.DataFrame, edges: Sequence[float]) -> pd.DataFrame:
    """`score_buckets_by_day` as each day's share of scores below each edge.

    Columns: ``day``, ``edge``, ``share_below``; one row per day and edge.
    """
    rows: list[dict[str, object]] = []
    for day, part in buckets.groupby("day", sort=True):
        counts = part.set_index("bucket")["scored"].reindex(range(len(edges) + 1), fill_value=0)
        below = counts.cumsum().to_numpy()[:-1] / max(int(counts.sum()), 1)
        rows.extend(
            {"day": day, "edge": edge, "share_below": share}
            for edge, share in zip(edges, below, strict=True)
        )
    return pd.DataFrame(rows, columns=["day", "edge", "share_below"])
