"""Fraud history: flagged vs labelled fraud by hour or day, outcomes and amounts, per version."""

from __future__ import annotations

import math

import filters
import loaders
import streamlit as st

from fraudpipe.dashboard import charts, summaries


def _share(value: float) -> str:
    return f"{value:.1%}" if not math.isnan(value) else "n/a"


st.title("Fraud history")
window = filters.current_window()
if window is None:
    st.info(filters.NO_TRANSACTIONS)
    st.stop()

hourly = loaders.fraud_by_hour(loaders.db_url(), window.first_day, window.last_day)
if hourly.empty:
    st.info(
        f"No scored transactions between {window.first_day} and {window.last_day}: score a "
        "batch (`fraudpipe publish` with the scorer running) or widen the date range."
    )
    st.stop()

left, right = st.columns([1, 3])
by_day = left.radio("Granularity", ["hour", "day"], index=1 if window.days > 2 else 0) == "day"
versions_present = sorted(int(v) for v in hourly["model_version"].unique())
chosen = right.multiselect(
    "Model versions",
    versions_present,
    default=versions_present,
    format_func=lambda v: f"v{v}",
)
if not chosen:
    st.info("Pick at least one model version.")
    st.stop()

selected = summaries.select_versions(hourly, chosen)
totals = summaries.overall_totals(selected)
cols = st.columns(6)
cols[0].metric("Scored", f"{totals['scored']:,.0f}")
cols[1].metric("Flagged", f"{totals['flagged']:,.0f}")
cols[2].metric("Flagged rate", f"{totals['flagged_rate']:.2%}")
labelled_rate = totals["fraud_rate"]
cols[3].metric(
    "Labelled fraud rate",
    f"{labelled_rate:.3%}" if not math.isnan(labelled_rate) else "no labels",
    help=f"Frauds among the {totals['labelled']:,.0f} labelled predictions",
)
cols[4].metric("Precision", _share(totals["precision"]), help="caught / (caught + false alarms)")
cols[5].metric("Recall", _share(totals["recall"]), help="caught / (caught + missed)")
outcome_cols = st.columns(6)
outcome_cols[0].metric("Caught", f"{totals['caught']:,.0f}")
outcome_cols[1].metric("Missed", f"{totals['missed']:,.0f}")
outcome_cols[2].metric("False alarms", f"{totals['false_alarms']:,.0f}")
outcome_cols[3].metric("Amount flagged", f"{totals['amount_flagged']:,.2f}", help="Held for review")
outcome_cols[4].metric("Fraud amount caught", f"{totals['amount_caught']:,.2f}")
outcome_cols[5].metric(
    "Fraud amount missed", f"{totals['amount_missed']:,.2f}", help="Lost to fraud"
)
if totals["labelled"] == 0:
    st.info(
        "None of these transactions is labelled yet, so caught / missed / false alarms are "
        "empty; labels arrive with the source data."
    )

history = summaries.history(selected, "day" if by_day else "hour")
st.plotly_chart(charts.rates_over_time(history), key="history_rates")
st.plotly_chart(charts.outcomes_over_time(history), key="history_outcomes")
st.plotly_chart(charts.amounts_over_time(history), key="history_amounts")

st.subheader("Per model version")
per_version = summaries.version_totals(selected)
st.dataframe(
    per_version,
    hide_index=True,
    column_config={
        "flagged_rate": st.column_config.NumberColumn(format="percent"),
        "fraud_rate": st.column_config.NumberColumn(format="percent"),
        "precision": st.column_config.NumberColumn(format="%.3f"),
        "recall": st.column_config.NumberColumn(format="%.3f"),
    },
)
