"""Review queue: open alerts by score and amount, each with its reasons; an analyst decides one.

A decision is written as an ``analyst`` label through the analyst database role
(`fraudpipe.labels.review`); every read here stays on the dashboard's read-only role.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import loaders
import pandas as pd
import streamlit as st

from fraudpipe.dashboard import charts, summaries
from fraudpipe.errors import FraudpipeError
from fraudpipe.labels.review import Decision, record_decision

QUEUE_ROWS = 50
#: What the last decision did, shown once after the page reloads without the decided alert.
RECORDED = "review_recorded"

st.title("Review queue")
url = loaders.db_url()
if RECORDED in st.session_state:
    st.success(st.session_state.pop(RECORDED))


def _queue() -> None:
    queue = loaders.open_alerts(url, QUEUE_ROWS)
    if queue.empty:
        st.info("No open alert: every alert has an analyst's decision, or none was raised yet.")
        return
    st.caption(
        f"The {len(queue)} open alerts with the highest scores (then the largest amounts); an "
        "alert leaves the queue once an analyst has decided it."
    )
    st.dataframe(
        queue[["score", "amount", "event_time", "reasons", "model_version", "transaction_id"]],
        hide_index=True,
    )

    def _label(transaction_id: str) -> str:
        row = queue[queue["transaction_id"] == transaction_id].iloc[0]
        return f"score {row['score']:.3f} · amount {row['amount']:,.2f} · {transaction_id}"

    chosen = st.selectbox("Alert", queue["transaction_id"].tolist(), format_func=_label)
    alert = queue[queue["transaction_id"] == chosen].iloc[0]
    st.markdown(f"**Transaction** `{chosen}` in batch `{alert['batch_id']}`")
    cols = st.columns([1, 1, 1, 2])
    cols[0].metric("Score", f"{alert['score']:.3f}", help=f"threshold {alert['threshold']:.3f}")
    cols[1].metric("Amount", f"{alert['amount']:,.2f}")
    cols[2].metric("Model version", f"v{int(alert['model_version'])}")
    cols[3].metric("Event time (UTC)", f"{pd.Timestamp(alert['event_time']):%Y-%m-%d %H:%M}")
    reasons = alert["reasons"]
    if isinstance(reasons, str) and reasons:
        st.markdown(
            "**Why it was flagged**\n" + "\n".join(f"- {r}" for r in reasons.split("; ") if r)
        )
    else:
        st.caption("This model version gives no reasons for its scores.")

    with st.form("decision", clear_on_submit=True):
        analyst = st.text_input("Your name", max_chars=200, key="review_analyst")
        verdict = st.radio("Decision", ["fraud", "legitimate"], horizontal=True)
        note = st.text_area("Note", max_chars=2000)
        submitted = st.form_submit_button("Record decision")
    if submitted:
        try:
            record_decision(
                loaders.settings(),
                Decision(str(chosen), verdict == "fraud", analyst, note),
            )
        except FraudpipeError as exc:
            st.error(str(exc))
        else:
            st.session_state[RECORDED] = f"Recorded {chosen} as {verdict} by {analyst.strip()}."
            loaders.open_alerts.clear()
            loaders.label_arrival.clear()
            st.rerun()


def _label_arrival() -> None:
    settings = loaders.settings()
    st.subheader("Labels arriving")
    as_of_day = st.date_input(
        "As of the end of (UTC)",
        value=None,
        help="Empty: now, the latest transaction's time. A past day shows what was known then.",
    )
    as_of = (
        datetime.combine(as_of_day + timedelta(days=1), time(0), tzinfo=UTC)
        if isinstance(as_of_day, date)
        else None
    )
    arrival = summaries.label_shares(
        loaders.label_arrival(url, timedelta(days=settings.label_delay_days), as_of)
    )
    if arrival.empty:
        st.info("No transaction yet.")
        return
    clock = pd.Timestamp(arrival["clock"].iat[0])
    st.caption(
        f"What is known at {clock:%Y-%m-%d %H:%M} UTC: an analyst's "
        "decision or a chargeback as soon as it is recorded, the source's own label "
        f"{settings.label_delay_days:g} days after the event, as a bank learns it. Retraining "
        "and the champion/challenger comparison use only these."
    )
    st.plotly_chart(charts.label_arrival(arrival), key="review_label_arrival")
    st.dataframe(
        arrival[
            [
                "day",
                "transactions",
                "known",
                "share_known",
                "frauds_known",
                "dataset",
                "chargeback",
                "analyst",
                "awaiting",
            ]
        ],
        hide_index=True,
    )


_queue()
_label_arrival()
