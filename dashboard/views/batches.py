"""Batches & lineage: batches with status and counts, a batch's rows, a transaction's trail."""

from __future__ import annotations

import math

import filters
import loaders
import pandas as pd
import streamlit as st

from fraudpipe.errors import FraudpipeError

PAGE_SIZE = 50
NEWEST = "newest version"

st.title("Batches & lineage")
url = loaders.db_url()

st.subheader("Find a transaction")
searched = st.text_input(
    "transaction_id", placeholder="e.g. 2f1c0a9e-7d4b-5c3e-9a1f-0b6d8e2c4a57", key="trail_id"
)
if searched.strip():
    try:
        trail = loaders.transaction_trail(url, searched.strip())
    except FraudpipeError as exc:
        st.warning(str(exc))
    else:
        if not trail.found:
            st.warning(f"No transaction {searched.strip()} in this database.")
        else:
            row = trail.transaction.iloc[0]
            label = row["label"]
            st.markdown(
                f"**Batch** `{row['batch_id']}` ({row['batch_status']}; loaded "
                f"{row['loaded_at']:%Y-%m-%d %H:%M}) → **event** {row['event_time']} · amount "
                f"{row['amount']:,.2f} · source row {row['source_row']} → **label** "
                f"{'not labelled yet' if pd.isna(label) else int(label)}"
            )
            if trail.predictions.empty:
                st.info("Not scored yet: its batch has not been published and consumed.")
            else:
                st.markdown("**Scores** (one row per model version; `is_fraud` = alert raised)")
                st.dataframe(trail.predictions, hide_index=True)
            for version, reasons in trail.reasons.groupby("model_version"):
                method = "exact" if reasons["method"].iat[0] == "linear" else "SHAP"
                st.markdown(
                    f"**Why v{version} flagged it** ({method} contributions to the log-odds):\n"
                    + "\n".join(f"{r.rank}. {r.description}" for r in reasons.itertuples())
                )
            if not trail.dead_letters.empty:
                st.markdown("**Dead letters** with this key")
                st.dataframe(trail.dead_letters, hide_index=True)

st.subheader("Batches")
status = loaders.batch_status_counts(url)
if status.empty:
    st.info(filters.NO_TRANSACTIONS)
    st.stop()
cols = st.columns(max(3, len(status)))
for col, (_, s) in zip(cols, status.iterrows(), strict=False):
    col.metric(
        f"Batches {s['status']}",
        f"{int(s['batches']):,}",
        help=f"{int(s['rows']):,} rows, {int(s['quarantined']):,} quarantined",
    )

window = filters.current_window()
if window is None:
    st.stop()
overview = loaders.batches_overview(url, window.first_day, window.last_day)
st.caption(f"Batches dated {window.first_day} to {window.last_day}, newest first")
if overview.empty:
    st.info("No batch in this date range.")
    st.stop()
st.dataframe(overview, hide_index=True)

st.subheader("Drill down")
batch_id = st.selectbox("Batch", overview["batch_id"].tolist())
batch = overview[overview["batch_id"] == batch_id].iloc[0]
batch_cols = st.columns(4)
batch_cols[0].metric("Rows", f"{int(batch['row_count']):,}")
batch_cols[1].metric("Quarantined", f"{int(batch['quarantined_count']):,}")
batch_cols[2].metric("Predictions", f"{int(batch['predictions']):,}")
batch_cols[3].metric("Flagged", f"{int(batch['flagged']):,}")

quarantine = loaders.batch_quarantine(url, batch_id)
if not quarantine.empty:
    with st.expander(f"Quarantined rows by reason ({int(quarantine['rows'].sum()):,})"):
        st.dataframe(quarantine, hide_index=True)

versions = [v for v in str(batch["versions"] or "").split(", ") if v]
left, right = st.columns(2)
version_choice = left.selectbox("Prediction of", [NEWEST, *versions])
pages = max(1, math.ceil(int(batch["row_count"]) / PAGE_SIZE))
page = right.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1, step=1)
rows = loaders.batch_transactions(
    url,
    batch_id,
    int(page) - 1,
    PAGE_SIZE,
    None if version_choice == NEWEST else int(version_choice),
)
st.dataframe(rows, hide_index=True)
st.caption("Paste a transaction_id into the search box above to see its whole trail.")
