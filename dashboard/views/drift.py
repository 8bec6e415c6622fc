"""Drift: how far each scored day's inputs and scores moved from the model's training data.

Each batch is measured once it is scored (the daily DAG's ``drift`` task), for the version that
scored it, against the reference profile logged with that version: PSI per column, and the
alert rate against the rate its threshold was placed for.
"""

from __future__ import annotations

import loaders
import streamlit as st

from fraudpipe.dashboard import charts, summaries

st.title("Drift")
url = loaders.db_url()
settings = loaders.settings()
threshold = settings.drift_psi_threshold

drift = loaders.batch_drift(url)
if drift.empty:
    st.info(
        "No batch measured yet: a batch's drift is measured once it is scored, by the daily "
        "DAG's `drift` task, for versions trained with a reference profile."
    )
    st.stop()

matrix = summaries.drift_matrix(drift)
drifted = (matrix > threshold).sum()
cols = st.columns(3)
cols[0].metric("Days measured", f"{matrix.shape[1]:,}")
cols[1].metric("Days with a drifted column", f"{int((drifted > 0).sum()):,}")
cols[2].metric("PSI threshold", f"{threshold:g}", help="FRAUDPIPE_DRIFT_PSI_THRESHOLD")
st.caption(
    "Population stability index per column (rows) and day (columns), for the version that "
    "scored most of the day, against its own training data: below 0.1 stable, 0.1 to 0.2 a "
    f"moderate shift, above {threshold:g} drifted."
)
st.plotly_chart(charts.drift_heatmap(matrix, threshold), key="drift_heatmap")

rates = loaders.batch_alert_rates(url)
if not rates.empty:
    st.plotly_chart(charts.alert_rates(rates), key="drift_alert_rates")
    st.dataframe(rates, hide_index=True)
