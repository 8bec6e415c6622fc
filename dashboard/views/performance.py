"""Live performance: each version's precision, recall and average precision on live traffic,
day by day, as the labels arrive; the champion's and the shadow challenger's side by side."""

from __future__ import annotations

from datetime import timedelta

import loaders
import streamlit as st

from fraudpipe.dashboard import charts, summaries

st.title("Live performance")
url = loaders.db_url()
settings = loaders.settings()

bins = loaders.live_performance_bins(url, timedelta(days=settings.label_delay_days))
performance = summaries.live_performance(bins)
if performance.empty:
    st.info(
        "No scored transaction has a known label yet: a source's label is known "
        f"{settings.label_delay_days:g} days after the event, an analyst's or a chargeback at "
        "once (the Review page shows what has arrived)."
    )
    st.stop()

st.caption(
    "Per day of the transactions and version, on those whose label is known now (the Review "
    "page's rule), each version at its own threshold. Dotted: a challenger scoring in shadow. "
    "A dashed line marks the first day a new champion scored."
)
takeovers = summaries.champion_takeovers(performance)
for metric in ("precision", "recall", "average_precision"):
    st.plotly_chart(
        charts.live_performance(performance, metric, takeovers), key=f"performance_{metric}"
    )
st.dataframe(performance, hide_index=True)
