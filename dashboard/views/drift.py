"""Drift: how far each scored day's inputs and scores moved from the model's training data.

Each batch is measured once it is scored (the daily DAG's ``drift`` task), for the version that
scored it, against the reference profile logged with that version: PSI per column, and the
alert rate against the rate its threshold was placed for.
"""

from __future__ import annotations

import loaders
import model_loaders
import streamlit as st

from fraudpipe.dashboard import charts, summaries
from fraudpipe.errors import FraudpipeError
from fraudpipe.model.drift import SCORE

#: Where the daily score curves are drawn besides the reference's own edges (log-spaced: most
#: scores sit near zero).
SCORE_GRID = tuple(10.0**k for k in range(-6, 1))

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

# The latest day's version: its scores per day against its own training data's.
latest = drift[drift["day"] == drift["day"].max()]
version = int(latest.sort_values("rows")["model_version"].iat[-1])
try:
    profile = model_loaders.reference_profile(
        settings.mlflow_tracking_uri, settings.model_name, version
    )
except FraudpipeError as exc:
    st.warning(f"The score distribution needs MLflow: {exc}")
    profile = None
score = next((c for c in profile.columns if c.name == SCORE), None) if profile else None
if score is None:
    st.info(f"Version {version} has no reference profile in MLflow: no score distribution.")
else:
    edges = tuple(sorted({*score.edges, *SCORE_GRID}))
    cdfs = summaries.score_cdfs(loaders.score_buckets_by_day(url, version, edges), edges)
    st.plotly_chart(charts.score_distribution(cdfs, score.edges, score.shares), key="drift_scores")
    st.caption(
        f"Version {version}'s scores, one line per day it scored (darker: later), against its "
        "training data's (dashed): a line away from the dashed one is a shifted score."
    )

rates = loaders.batch_alert_rates(url)
if not rates.empty:
    st.plotly_chart(charts.alert_rates(rates), key="drift_alert_rates")
    st.dataframe(rates, hide_index=True)
