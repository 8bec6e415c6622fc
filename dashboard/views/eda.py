"""EDA: class balance, amount by class, the V-features that separate fraud, time of day."""

from __future__ import annotations

import filters
import loaders
import streamlit as st

from fraudpipe.dashboard import charts, summaries

st.title("Exploratory analysis")
window = filters.current_window()
if window is None:
    st.info(filters.NO_TRANSACTIONS)
    st.stop()

url = loaders.db_url()
moments = loaders.class_moments(url, window.first_day, window.last_day)
if moments.empty:
    st.info(f"No transactions between {window.first_day} and {window.last_day}.")
    st.stop()
st.caption(
    f"Transactions with event time from {window.first_day} to {window.last_day} (UTC), "
    "aggregated in PostgreSQL"
)

balance = summaries.class_balance(moments)
counts = dict(zip(balance["class"], balance["rows"], strict=True))
labelled = counts.get("fraud", 0) + counts.get("normal", 0)
cols = st.columns(4)
cols[0].metric("Transactions", f"{int(balance['rows'].sum()):,}")
cols[1].metric("Labelled fraud", f"{counts.get('fraud', 0):,}")
cols[2].metric("Labelled normal", f"{counts.get('normal', 0):,}")
cols[3].metric(
    "Fraud share of labelled", f"{counts.get('fraud', 0) / labelled:.3%}" if labelled else "n/a"
)
if labelled == 0:
    st.info("No labelled transactions in this range: class comparisons need labels.")

left, right = st.columns(2)
left.plotly_chart(charts.class_balance(balance), key="eda_balance")
distribution = summaries.amount_distribution(
    loaders.amount_and_hour_counts(url, window.first_day, window.last_day)
)
right.plotly_chart(charts.amount_distribution(distribution), key="eda_amount")
amount_stats = moments.assign(**{"class": [summaries.class_name(v) for v in moments["label"]]})[
    ["class", "rows", "amount_mean", "amount_std", "amount_max"]
]
st.dataframe(amount_stats, hide_index=True)

separation = summaries.feature_separation(moments)
if separation.empty:
    st.info("Feature separation needs at least two labelled frauds and two labelled normals.")
else:
    st.plotly_chart(charts.feature_separation(separation), key="eda_separation")
    top = ", ".join(separation["feature"].head(3))
    st.caption(f"Strongest separation: {top} (standardised mean difference, fraud − normal)")

hours = summaries.hour_of_day(
    loaders.amount_and_hour_counts(url, window.first_day, window.last_day)
)
if not hours.empty:
    st.plotly_chart(charts.hour_of_day(hours), key="eda_hours")
