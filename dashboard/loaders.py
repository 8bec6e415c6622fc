"""Cached reads for the pages: the core's queries behind `st.cache_data` with a TTL.

Every cached function takes the database URL (or MLflow URI) as its first argument, so the cache
key names the database: a second app or a test pointing elsewhere never sees these frames.
Dates travel as `date` objects (hashable) and become a `DateWindow` inside.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final

import pandas as pd
import streamlit as st

from fraudpipe.adapters.postgres import dashboard_queries
from fraudpipe.config import Settings, get_settings
from fraudpipe.dashboard import consumer_metrics
from fraudpipe.data.window import DateWindow

LIVE_TTL_SECONDS: Final = 5
HISTORY_TTL_SECONDS: Final = 60


def settings() -> Settings:
    return get_settings()


def db_url() -> str:
    """The read-only role's URL: the dashboard never connects with write rights."""
    return settings().reader_db_url


@st.cache_resource(show_spinner=False)
def engine(url: str) -> dashboard_queries.Engine:
    return dashboard_queries.create_reader_engine(url)


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def check_schema(url: str) -> None:
    dashboard_queries.check_schema(engine(url))


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def data_extent(url: str) -> dashboard_queries.DataExtent:
    return dashboard_queries.data_extent(engine(url))


# --- Live ---


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def latest_predictions(url: str, limit: int, alerts_only: bool) -> pd.DataFrame:
    return dashboard_queries.latest_predictions(engine(url), limit, alerts_only)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def model_refusals(url: str, model_name: str) -> pd.DataFrame:
    return dashboard_queries.model_refusals(engine(url), model_name)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def scoring_activity(url: str, minutes: int) -> pd.DataFrame:
    return dashboard_queries.scoring_activity(engine(url), minutes)


def consumer_snapshot() -> consumer_metrics.ConsumerSnapshot | None:
    # Not cached: the scrape is one loopback request and the point is to be current.
    return consumer_metrics.scrape_consumer(consumer_metrics.metrics_url(settings()))


# --- History, batches, EDA ---


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def fraud_by_hour(url: str, first_day: date, last_day: date) -> pd.DataFrame:
    return dashboard_queries.fraud_by_hour(engine(url), DateWindow(first_day, last_day))


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def batch_status_counts(url: str) -> pd.DataFrame:
    return dashboard_queries.batch_status_counts(engine(url))


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def batches_overview(url: str, first_day: date, last_day: date) -> pd.DataFrame:
    return dashboard_queries.batches_overview(engine(url), DateWindow(first_day, last_day))


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def batch_quarantine(url: str, batch_id: str) -> pd.DataFrame:
    return dashboard_queries.batch_quarantine(engine(url), batch_id)


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def batch_transactions(
    url: str, batch_id: str, page: int, page_size: int, model_version: int | None
) -> pd.DataFrame:
    return dashboard_queries.batch_transactions(
        engine(url), batch_id, page, page_size, model_version
    )


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def transaction_trail(url: str, transaction_id: str) -> dashboard_queries.TransactionTrail:
    return dashboard_queries.transaction_trail(engine(url), transaction_id)


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def serving_history(url: str, first_day: date, last_day: date) -> pd.DataFrame:
    return dashboard_queries.serving_history(engine(url), DateWindow(first_day, last_day))


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def score_bins(url: str, first_day: date, last_day: date, model_version: int) -> pd.DataFrame:
    return dashboard_queries.score_bins(engine(url), DateWindow(first_day, last_day), model_version)


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def class_moments(url: str, first_day: date, last_day: date) -> pd.DataFrame:
    return dashboard_queries.class_moments(engine(url), DateWindow(first_day, last_day))


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def amount_and_hour_counts(url: str, first_day: date, last_day: date) -> pd.DataFrame:
    return dashboard_queries.amount_and_hour_counts(engine(url), DateWindow(first_day, last_day))


# --- Review queue ---


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def open_alerts(url: str, limit: int) -> pd.DataFrame:
    return dashboard_queries.open_alerts(engine(url), limit)


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def shadow_counts(url: str, label_delay: timedelta) -> pd.DataFrame:
    return dashboard_queries.shadow_counts(engine(url), label_delay)


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def label_arrival(url: str, label_delay: timedelta, as_of: datetime | None) -> pd.DataFrame:
    return dashboard_queries.label_arrival(engine(url), label_delay, as_of)


# --- Drift ---


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def batch_drift(url: str) -> pd.DataFrame:
    return dashboard_queries.batch_drift(engine(url))


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def score_buckets_by_day(url: str, model_version: int, edges: tuple[float, ...]) -> pd.DataFrame:
    return dashboard_queries.score_buckets_by_day(engine(url), model_version, edges)


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def batch_alert_rates(url: str) -> pd.DataFrame:
    return dashboard_queries.batch_alert_rates(engine(url))


# --- Live performance ---


@st.cache_data(ttl=HISTORY_TTL_SECONDS, show_spinner=False)
def live_performance_bins(url: str, label_delay: timedelta) -> pd.DataFrame:
    return dashboard_queries.live_performance_bins(engine(url), label_delay)
