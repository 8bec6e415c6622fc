"""Live: the scorer's latest predictions and alerts, its rate, latency and consumer lag."""

from __future__ import annotations

import math
from datetime import datetime

import loaders
import streamlit as st

from fraudpipe.dashboard import charts, summaries
from fraudpipe.dashboard.consumer_metrics import metrics_url
from fraudpipe.errors import FraudpipeError

REFRESH_SECONDS = 10
ACTIVITY_MINUTES = 60
ROWS = 50

NOTHING_SCORED = (
    "Nothing scored yet: start the scorer (`fraudpipe consume`) and publish a loaded batch "
    "(`fraudpipe publish`)."
)


def ago(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _rate(per_second: float) -> str:
    if math.isnan(per_second):
        return "n/a"
    if per_second < 1:
        return f"{per_second * 60:,.1f} /min"
    return f"{per_second:,.0f} /s"


def consumer_panel() -> None:
    try:
        snapshot = loaders.consumer_snapshot()
    except FraudpipeError as exc:
        st.warning(str(exc))
        return
    if snapshot is None:
        url = metrics_url(loaders.settings())
        st.info(f"Scoring consumer is not running (no metrics at {url}); lag is unknown.")
        return
    cols = st.columns(5)
    cols[0].metric("Consumer lag", f"{snapshot.total_lag:,.0f}", help="Messages behind, summed")
    cols[1].metric("Scored", f"{snapshot.transactions_scored:,.0f}", help="Since it started")
    # The gauge reads 0 until the scorer has loaded a model.
    version = snapshot.model_version
    cols[2].metric("Serving", f"v{version:.0f}" if version else "no model yet")
    p95 = snapshot.end_to_end_p95_s
    cols[3].metric("End-to-end p95", f"{p95 * 1000:,.0f} ms" if p95 is not None else "n/a")
    cols[4].metric("Dead letters", f"{snapshot.dead_letters:,.0f}", help="Since it started")
    if not snapshot.lag.empty:
        with st.expander("Lag per partition"):
            st.dataframe(snapshot.lag, hide_index=True)


@st.fragment(run_every=REFRESH_SECONDS)
def live_panel() -> None:
    url = loaders.db_url()
    extent = loaders.data_extent(url)
    st.caption(
        f"Refreshes every {REFRESH_SECONDS} s · database clock {extent.now:%Y-%m-%d %H:%M:%S} UTC"
    )
    st.subheader("Scoring consumer")
    consumer_panel()

    st.subheader("Predictions")
    if extent.last_scored is None:
        st.info(NOTHING_SCORED)
        return
    per_minute, totals = summaries.split_activity(loaders.scoring_activity(url, ACTIVITY_MINUTES))
    st.caption(f"Last prediction {ago(extent.last_scored, extent.now)}")
    if totals is not None:
        rate = summaries.scoring_rate_per_second(totals)
        cols = st.columns(4)
        cols[0].metric("Scoring rate", _rate(rate))
        cols[1].metric("Latency p50", f"{totals['latency_p50_ms']:,.1f} ms")
        cols[2].metric("Latency p95", f"{totals['latency_p95_ms']:,.1f} ms")
        cols[3].metric("Alerts in period", f"{int(totals['flagged']):,}")
        st.caption(
            f"Latest {ACTIVITY_MINUTES} minutes of scoring activity, ending at the newest "
            "prediction; latency is Kafka record time to committed prediction."
        )
        st.plotly_chart(charts.scoring_activity(per_minute), key="live_activity")

    alerts = loaders.latest_predictions(url, ROWS, True)
    st.subheader(f"Latest alerts ({len(alerts)})")
    if alerts.empty:
        st.info("No transaction has been flagged as fraud yet.")
    else:
        st.dataframe(alerts, hide_index=True)
    st.subheader("Latest predictions")
    st.dataframe(loaders.latest_predictions(url, ROWS, False), hide_index=True)


st.title("Live scoring")
live_panel()
