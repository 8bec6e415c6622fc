"""Every dashboard page through Streamlit's AppTest, on an empty and on a seeded database.

Pages must render without an exception or error element, say what is missing when there is no
data, and show the same key numbers as SQL written independently here (through the app role).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import streamlit as st
from dashboard_seed import SyntheticData, seed_synthetic
from ports import free_port
from scratch_db import scratch_database
from streamlit.testing.v1 import AppTest

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings, get_settings
from fraudpipe.scoring.metrics import ScoringMetrics

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("dashboard_on_loopback")]

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGES = [
    "views/live.py",
    "views/fraud_history.py",
    "views/batches.py",
    "views/models.py",
    "views/eda.py",
]
SEED = SyntheticData(transactions=900, days=3, unlabelled_days=1, versions=2)
DAY1, DAY2, DAY3 = date(2025, 9, 20), date(2025, 9, 21), date(2025, 9, 22)
# The first import of the app's modules (Plotly, MLflow for the Models page) can take long on a
# busy machine; the timeout only bounds a hung run.
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def seeded(fresh_db: Settings) -> Settings:
    seed_synthetic(fresh_db, SEED)
    return fresh_db


@pytest.fixture(scope="module")
def empty(stack: Settings) -> Iterator[Settings]:
    with scratch_database(stack, prefix="fraudpipe_test_dash_empty") as scratch:
        yield scratch


@pytest.fixture(scope="module")
def check(seeded: Settings) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with connect(seeded, "app", autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


@pytest.fixture
def point_app_at(monkeypatch: pytest.MonkeyPatch, unique: str) -> Iterator[Any]:
    """Aim the app's settings at a database (and a metrics port); fresh caches each time."""

    def point(database: Settings, metrics_port: int | None = None) -> AppTest:
        monkeypatch.setenv("FRAUDPIPE_PG_DATABASE", database.pg_database)
        # A model name nobody registers: the Models page shows its "nothing registered" state.
        monkeypatch.setenv("FRAUDPIPE_MODEL_NAME", f"dashboard-test-none-{unique}")
        monkeypatch.setenv("FRAUDPIPE_METRICS_PORT", str(metrics_port or free_port()))
        get_settings.cache_clear()
        st.cache_data.clear()
        st.cache_resource.clear()
        # One run first: AppTest.switch_page only knows st.navigation's pages after a run.
        return render(AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT))

    yield point
    st.cache_data.clear()
    st.cache_resource.clear()
    get_settings.cache_clear()


def render(at: AppTest, page: str | None = None) -> AppTest:
    """Run the app (on `page`) and fail on any exception or error element."""
    if page is not None:
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def infos(at: AppTest) -> str:
    return " ".join(str(i.value) for i in at.info)


def one(conn: psycopg.Connection[tuple[Any, ...]], query: str, *params: object) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def test_every_page_says_what_is_missing_on_an_empty_database(
    point_app_at: Any, empty: Settings
) -> None:
    at = point_app_at(empty)
    assert "Scoring consumer is not running" in infos(at)
    assert "Nothing scored yet" in infos(at)
    for page in PAGES[1:]:
        render(at, page)
        assert "No transactions loaded yet" in infos(at), page
    assert "is registered yet" in infos(render(at, "views/models.py"))
    assert "No batch measured yet" in infos(render(at, "views/drift.py"))
    assert "No scored transaction has a known label yet" in infos(
        render(at, "views/performance.py")
    )


@pytest.fixture(scope="module")
def single_batch(stack: Settings) -> Iterator[Settings]:
    """One day, one model version, nothing labelled yet: the state after the first ingest."""
    with scratch_database(stack, prefix="fraudpipe_test_dash_one") as scratch:
        seed_synthetic(
            scratch, SyntheticData(transactions=120, days=1, unlabelled_days=1, versions=1)
        )
        yield scratch


def test_every_page_renders_with_one_unlabelled_batch(
    point_app_at: Any, single_batch: Settings
) -> None:
    at = point_app_at(single_batch)
    history = render(at, "views/fraud_history.py")
    assert metrics(history)["Labelled fraud rate"] == "no labels"
    assert "None of these transactions is labelled yet" in infos(history)
    batches = render(at, "views/batches.py")
    assert metrics(batches)["Batches scored"] == "1"
    models = render(at, "views/models.py")
    assert "lack labels of both classes" in infos(models)
    eda = render(at, "views/eda.py")
    assert "Feature separation needs at least two labelled frauds" in infos(eda)
    assert metrics(eda)["Transactions"] == "120"


def test_every_page_renders_on_the_seeded_database(point_app_at: Any, seeded: Settings) -> None:
    at = point_app_at(seeded)
    for page in PAGES:
        render(at, page)
        assert at.title, page
        assert len(at.get("plotly_chart")) + len(at.dataframe) > 0, page


def window_counts(
    check: Any, first: date, last: date, version: int | None = None
) -> tuple[int, ...]:
    version_filter = "AND p.model_version = %s" if version is not None else ""
    params: tuple[object, ...] = (first, last) if version is None else (first, last, version)
    return one(
        check,
        f"""
        SELECT count(*), count(*) FILTER (WHERE p.is_fraud),
               count(*) FILTER (WHERE p.is_fraud AND t.label = 1),
               count(*) FILTER (WHERE NOT p.is_fraud AND t.label = 1),
               count(*) FILTER (WHERE p.is_fraud AND t.label = 0)
        FROM predictions p JOIN transactions t USING (transaction_id)
        WHERE (t.event_time AT TIME ZONE 'UTC')::date BETWEEN %s AND %s {version_filter}
        """,
        *params,
    )


def history_numbers(at: AppTest) -> tuple[int, ...]:
    shown = metrics(at)
    labels = ("Scored", "Flagged", "Caught", "Missed", "False alarms")
    return tuple(int(shown[label].replace(",", "")) for label in labels)


def test_fraud_history_numbers_follow_the_filters(
    point_app_at: Any, seeded: Settings, check: Any
) -> None:
    at = render(point_app_at(seeded), "views/fraud_history.py")
    # Default window: the latest two days of data.
    assert history_numbers(at) == window_counts(check, DAY2, DAY3)
    assert len(at.get("plotly_chart")) == 3

    at.multiselect[0].set_value([2])
    render(at)
    assert history_numbers(at) == window_counts(check, DAY2, DAY3, version=2)

    at.sidebar.date_input[0].set_value((DAY1, DAY1))
    render(at)
    assert history_numbers(at) == window_counts(check, DAY1, DAY1, version=2)


def test_live_page_shows_the_latest_hour_and_the_consumers_lag(
    point_app_at: Any, seeded: Settings, check: Any
) -> None:
    scorer = ScoringMetrics()
    server = scorer.serve(0)
    try:
        scorer.consumer_lag.labels(topic="fraud.transactions", partition="0").set(30)
        scorer.consumer_lag.labels(topic="fraud.transactions", partition="1").set(12)
        scorer.model_version.set(2)
        at = point_app_at(seeded, metrics_port=server.port)
    finally:
        server.close()
    shown = metrics(at)
    assert shown["Consumer lag"] == "42"
    assert shown["Serving"] == "v2"
    rows = check.execute(
        "SELECT latency_ms, is_fraud FROM predictions "
        "WHERE scored_at > (SELECT max(scored_at) FROM predictions) - interval '60 minutes'"
    ).fetchall()
    assert shown["Alerts in period"] == str(sum(1 for _, flagged in rows if flagged))
    assert shown["Latency p50"] == f"{np.percentile([r[0] for r in rows], 50):,.1f} ms"
    lag, alerts, latest = (d.value for d in at.dataframe)
    assert lag["lag"].sum() == 42
    (flagged,) = one(check, "SELECT count(*) FROM predictions WHERE is_fraud")
    assert alerts["is_fraud"].all() and len(alerts) == min(50, flagged)
    (newest,) = one(check, "SELECT max(scored_at) FROM predictions")
    assert len(latest) == 50 and latest["scored_at"].max() == newest


def test_batches_page_counts_drill_down_and_trail(
    point_app_at: Any, seeded: Settings, check: Any
) -> None:
    at = render(point_app_at(seeded), "views/batches.py")
    assert metrics(at)["Batches scored"] == "3"
    # The drill-down opens on the newest batch of the window.
    newest = f"{SEED.source}:{DAY3}"
    assert at.selectbox[0].value == newest
    rows, predictions, flagged = one(
        check,
        "SELECT (SELECT count(*) FROM transactions WHERE batch_id = %s), count(*), "
        "count(*) FILTER (WHERE is_fraud) FROM predictions WHERE batch_id = %s",
        newest,
        newest,
    )
    shown = metrics(at)
    assert (shown["Rows"], shown["Predictions"], shown["Flagged"]) == (
        f"{rows:,}",
        f"{predictions:,}",
        f"{flagged:,}",
    )
    page = at.dataframe[-1].value
    assert len(page) == 50 and page["source_row"].is_monotonic_increasing

    (tid,) = one(check, "SELECT transaction_id::text FROM transactions WHERE source_row = 1")
    at.text_input(key="trail_id").input(tid)
    render(at)
    assert any(f"{SEED.source}:{DAY1}" in str(m.value) for m in at.markdown)
    assert at.dataframe[0].value["model_version"].tolist() == [1, 2]

    at.text_input(key="trail_id").input("12345")
    render(at)
    assert "'12345' is not a transaction id" in at.warning[0].value


def test_eda_page_counts_classes_in_the_window(
    point_app_at: Any, seeded: Settings, check: Any
) -> None:
    at = render(point_app_at(seeded), "views/eda.py")
    total, frauds, normals = one(
        check,
        "SELECT count(*), count(*) FILTER (WHERE label = 1), count(*) FILTER (WHERE label = 0) "
        "FROM transactions WHERE (event_time AT TIME ZONE 'UTC')::date BETWEEN %s AND %s",
        DAY2,
        DAY3,
    )
    shown = metrics(at)
    assert shown["Transactions"] == f"{total:,}"
    assert shown["Labelled fraud"] == f"{frauds:,}"
    assert shown["Labelled normal"] == f"{normals:,}"
    assert len(at.get("plotly_chart")) == 4


def test_models_page_without_a_registered_model_still_shows_scoring(
    point_app_at: Any, seeded: Settings
) -> None:
    at = render(point_app_at(seeded), "views/models.py")
    assert "is registered yet" in infos(at)
    shadow, serving = at.dataframe[0].value, at.dataframe[1].value
    assert shadow["version"].tolist() == [1, 9]  # the champion, and the challenger in shadow
    assert (shadow["scored"] >= shadow["labelled"]).all()
    assert serving["model_version"].tolist() == [1, 2]
    # v2 scored labelled day-two transactions: its curves are drawn from SQL bins.
    assert len(at.get("plotly_chart")) == 2


def test_review_page_shows_which_labels_have_arrived(point_app_at: Any, seeded: Settings) -> None:
    at = render(point_app_at(seeded), "views/review.py")
    arrival = at.dataframe[-1].value
    assert (arrival["known"] + arrival["awaiting"] == arrival["transactions"]).all()
    assert int(arrival["transactions"].sum()) == SEED.transactions
    assert len(at.get("plotly_chart")) == 1


def test_drift_page_draws_the_heatmap_and_the_alert_rates(
    point_app_at: Any, seeded: Settings
) -> None:
    at = render(point_app_at(seeded), "views/drift.py")
    assert len(at.get("plotly_chart")) == 2
    shown = metrics(at)
    assert shown["Days measured"] == "3" and shown["Days with a drifted column"] == "1"


def test_live_performance_page_draws_three_metrics(
    point_app_at: Any, seeded: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The seed spans three days: with a day's delay, the first two days' labels are known.
    monkeypatch.setenv("FRAUDPIPE_LABEL_DELAY_DAYS", "1")
    at = render(point_app_at(seeded), "views/performance.py")
    assert len(at.get("plotly_chart")) == 3
    table = at.dataframe[0].value
    assert {"champion", "shadow"} <= set(table["role"])
