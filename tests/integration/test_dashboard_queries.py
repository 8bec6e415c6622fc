"""The dashboard's SQL aggregations on a real, migrated PostgreSQL database, read as the reader.

Expected numbers are computed independently in each test: other SQL (no batch pruning, dates
by casting) through the app role, or numpy over the raw rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from dashboard_seed import SyntheticData, seed_synthetic
from scratch_db import scratch_database
from sklearn.metrics import average_precision_score

from fraudpipe.adapters.postgres import dashboard_queries
from fraudpipe.adapters.postgres.connect import connect, create_engine
from fraudpipe.adapters.postgres.model_refusals import record_refusal
from fraudpipe.config import Settings
from fraudpipe.dashboard import summaries
from fraudpipe.data.window import DateWindow
from fraudpipe.errors import DashboardFilterError, DashboardSchemaError, ServiceUnavailableError

pytestmark = pytest.mark.integration

SEED = SyntheticData(transactions=900, days=3, unlabelled_days=1, versions=2)
DAY1, DAY2, DAY3 = date(2025, 9, 20), date(2025, 9, 21), date(2025, 9, 22)
SOURCE = SEED.source


@pytest.fixture(scope="module")
def seeded(fresh_db: Settings) -> Settings:
    seed_synthetic(fresh_db, SEED)
    return fresh_db


@pytest.fixture(scope="module")
def reader(seeded: Settings) -> Iterator[sa.Engine]:
    engine = create_engine(seeded, "reader")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def check(seeded: Settings) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """The app role's connection, for the tests' own independent SQL."""
    with connect(seeded, "app", autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


def one(conn: psycopg.Connection[tuple[Any, ...]], query: str, *params: object) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def test_the_dashboard_reads_as_the_read_only_role(reader: sa.Engine, seeded: Settings) -> None:
    frame = dashboard_queries.read_frame(reader, "SELECT current_user AS who")
    assert frame["who"].iloc[0] == seeded.pg_reader_user
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        dashboard_queries.read_frame(reader, "DELETE FROM quarantine RETURNING id")


def test_extent_is_the_first_and_last_event(reader: sa.Engine, check: Any) -> None:
    extent = dashboard_queries.data_extent(reader)
    first, last, scored, batches = one(
        check,
        "SELECT min(event_time), max(event_time), "
        "(SELECT max(scored_at) FROM predictions), (SELECT count(*) FROM batches) "
        "FROM transactions",
    )
    assert (extent.first_event, extent.last_event) == (first, last)
    assert extent.last_scored == scored
    assert extent.batches == batches == SEED.days


def test_fraud_by_hour_totals_match_an_independent_count(reader: sa.Engine, check: Any) -> None:
    hourly = dashboard_queries.fraud_by_hour(reader, DateWindow(DAY2, DAY3))
    got = summaries.version_totals(hourly).set_index("model_version")
    rows = check.execute(
        """
        SELECT p.model_version, count(*),
               sum(CASE WHEN p.is_fraud THEN 1 ELSE 0 END),
               sum(CASE WHEN t.label IS NOT NULL THEN 1 ELSE 0 END),
               sum(CASE WHEN p.is_fraud AND t.label = 1 THEN 1 ELSE 0 END),
               sum(CASE WHEN NOT p.is_fraud AND t.label = 1 THEN 1 ELSE 0 END),
               sum(CASE WHEN p.is_fraud AND t.label = 0 THEN 1 ELSE 0 END),
               sum(CASE WHEN p.is_fraud THEN t.amount ELSE 0 END)
        FROM predictions p, transactions t
        WHERE p.transaction_id = t.transaction_id
          AND (t.event_time AT TIME ZONE 'UTC')::date BETWEEN %s AND %s
        GROUP BY p.model_version ORDER BY 1
        """,
        (DAY2, DAY3),
    ).fetchall()
    assert sorted(got.index) == [r[0] for r in rows] == [1, 2]
    for version, scored, flagged, labelled, caught, missed, alarms, amount in rows:
        g = got.loc[version]
        assert (g["scored"], g["flagged"], g["labelled"]) == (scored, flagged, labelled)
        assert (g["caught"], g["missed"], g["false_alarms"]) == (caught, missed, alarms)
        assert g["amount_flagged"] == pytest.approx(amount)
    # Day 3 is unlabelled, so nothing there is caught or missed.
    day3 = hourly[hourly["hour"] >= pd.Timestamp(DAY3, tz="UTC")]
    assert day3["labelled"].sum() == 0 and day3["scored"].sum() > 0
    # Each hour bucket holds only that hour's events.
    assert hourly["hour"].dt.minute.eq(0).all()


def test_one_day_window_counts_that_day_only(reader: sa.Engine, check: Any) -> None:
    hourly = dashboard_queries.fraud_by_hour(reader, DateWindow(DAY1, DAY1))
    (expected,) = one(
        check,
        "SELECT count(*) FROM predictions p JOIN transactions t USING (transaction_id) "
        "WHERE t.event_time >= '2025-09-20' AND t.event_time < '2025-09-21'",
    )
    assert hourly["scored"].sum() == expected > 0
    assert set(hourly["hour"].dt.date) == {DAY1}


def test_latest_predictions_and_alerts_are_newest_first(reader: sa.Engine, check: Any) -> None:
    latest = dashboard_queries.latest_predictions(reader, limit=10)
    assert len(latest) == 10 and latest["scored_at"].is_monotonic_decreasing
    (newest,) = one(check, "SELECT max(scored_at) FROM predictions")
    assert latest["scored_at"].iloc[0] == newest
    alerts = dashboard_queries.latest_predictions(reader, limit=500, alerts_only=True)
    (flagged,) = one(check, "SELECT count(*) FROM predictions WHERE is_fraud")
    assert len(alerts) == min(500, flagged) and alerts["is_fraud"].all()
    # Each alert with its reasons in words, largest first; a plain prediction has none.
    assert alerts["reasons"].str.match(r"^v14 .*far below normal; v17 ").all()
    plain = dashboard_queries.latest_predictions(reader, limit=500)
    assert plain.loc[~plain["is_fraud"], "reasons"].isna().all()


def test_scoring_activity_of_the_latest_hour(reader: sa.Engine, check: Any) -> None:
    per_minute, totals = summaries.split_activity(
        dashboard_queries.scoring_activity(reader, minutes=60)
    )
    latencies = [
        r[0]
        for r in check.execute(
            "SELECT latency_ms FROM predictions "
            "WHERE scored_at > (SELECT max(scored_at) FROM predictions) - interval '60 minutes'"
        ).fetchall()
    ]
    assert totals is not None
    assert totals["scored"] == len(latencies) == per_minute["scored"].sum()
    assert totals["latency_p50_ms"] == pytest.approx(np.percentile(latencies, 50))
    assert totals["latency_p95_ms"] == pytest.approx(np.percentile(latencies, 95))


def test_batches_overview_counts_each_batchs_predictions(reader: sa.Engine, check: Any) -> None:
    overview = dashboard_queries.batches_overview(reader, DateWindow(DAY1, DAY3)).set_index(
        "batch_id"
    )
    assert list(overview.index) == [f"{SOURCE}:{d}" for d in (DAY3, DAY2, DAY1)]
    for batch_id, predictions, flagged in check.execute(
        "SELECT batch_id, count(*), count(*) FILTER (WHERE is_fraud) FROM predictions "
        "GROUP BY batch_id"
    ).fetchall():
        assert overview.loc[batch_id, "predictions"] == predictions
        assert overview.loc[batch_id, "flagged"] == flagged
    # Rows rescored by the challenger make the day-one batch show both versions.
    assert overview.loc[f"{SOURCE}:{DAY1}", "versions"] == "1, 2"
    assert overview["row_count"].sum() == SEED.transactions
    status = dashboard_queries.batch_status_counts(reader)
    assert status.to_dict("records") == [
        {"status": "scored", "batches": 3, "rows": SEED.transactions, "quarantined": 2}
    ]


def test_quarantine_reasons_of_a_batch(reader: sa.Engine) -> None:
    reasons = dashboard_queries.batch_quarantine(reader, f"{SOURCE}:{DAY1}")
    assert sorted(reasons["reason"]) == ["amount: less_than(0)", "v3: not_nullable"]
    assert dashboard_queries.batch_quarantine(reader, f"{SOURCE}:{DAY2}").empty


def test_batch_pages_are_disjoint_and_in_source_order(reader: sa.Engine, check: Any) -> None:
    batch_id = f"{SOURCE}:{DAY1}"
    first = dashboard_queries.batch_transactions(reader, batch_id, page=0, page_size=40)
    second = dashboard_queries.batch_transactions(reader, batch_id, page=1, page_size=40)
    assert len(first) == len(second) == 40
    rows = pd.concat([first, second])
    assert rows["source_row"].is_monotonic_increasing and rows["source_row"].is_unique
    (in_batch,) = one(
        check,
        "SELECT count(*) FROM transactions WHERE batch_id = %s AND transaction_id = ANY(%s)",
        batch_id,
        [uuid.UUID(t) for t in rows["transaction_id"]],
    )
    assert in_batch == 80
    # Row 1 was rescored by v2, row 100 was never scored.
    assert first.set_index("source_row").loc[1, "model_version"] == 2
    pinned = dashboard_queries.batch_transactions(
        reader, batch_id, page=0, page_size=5, model_version=1
    )
    assert pinned.set_index("source_row").loc[1, "model_version"] == 1
    hundredth = dashboard_queries.batch_transactions(reader, batch_id, page=2, page_size=40)
    unscored = hundredth.set_index("source_row").loc[100]
    assert pd.isna(unscored["score"]) and pd.isna(unscored["model_version"])


def test_a_transactions_trail(reader: sa.Engine, check: Any) -> None:
    tid, label = one(
        check,
        "SELECT transaction_id::text, label FROM transactions WHERE source_row = 1",
    )
    trail = dashboard_queries.transaction_trail(reader, tid.upper())
    assert trail.found
    row = trail.transaction.iloc[0]
    assert (row["batch_id"], row["source_row"], row["batch_status"]) == (
        f"{SOURCE}:{DAY1}",
        1,
        "scored",
    )
    assert row["label"] == label
    assert trail.predictions["model_version"].tolist() == [1, 2]
    assert (trail.predictions["threshold"] == SEED.threshold).all()
    assert trail.dead_letters["error_type"].tolist() == ["ValueDeserializationError"]

    (alert_id,) = one(
        check, "SELECT transaction_id::text FROM predictions WHERE is_fraud ORDER BY 1 LIMIT 1"
    )
    alerted = dashboard_queries.transaction_trail(reader, alert_id)
    flagged_by = alerted.predictions.loc[alerted.predictions["is_fraud"], "model_version"]
    assert set(alerted.reasons["model_version"]) == set(flagged_by)
    assert alerted.reasons.groupby("model_version")["feature"].agg(list).tolist() == [
        ["v14", "v17"]
    ] * len(flagged_by)

    unknown = dashboard_queries.transaction_trail(reader, str(uuid.uuid4()))
    assert not unknown.found and unknown.predictions.empty
    with pytest.raises(DashboardFilterError, match="is not a transaction id"):
        dashboard_queries.transaction_trail(reader, "'; DROP TABLE transactions; --")


def test_serving_history_per_version(reader: sa.Engine, check: Any) -> None:
    serving = dashboard_queries.serving_history(reader, DateWindow(DAY1, DAY3)).set_index(
        "model_version"
    )
    for version, count, first_at, last_at in check.execute(
        "SELECT model_version, count(*), min(scored_at), max(scored_at) FROM predictions GROUP BY 1"
    ).fetchall():
        assert serving.loc[version, "predictions"] == count
        assert serving.loc[version, "first_scored"] == first_at
        assert serving.loc[version, "last_scored"] == last_at


def test_score_bins_give_the_labelled_traffics_curves(reader: sa.Engine, check: Any) -> None:
    bins = dashboard_queries.score_bins(reader, DateWindow(DAY1, DAY3), model_version=1)
    raw = check.execute(
        "SELECT p.score, t.label FROM predictions p JOIN transactions t USING (transaction_id) "
        "WHERE p.model_version = 1 AND t.label IS NOT NULL"
    ).fetchall()
    scores = np.array([r[0] for r in raw])
    labels = np.array([r[1] for r in raw])
    assert bins["positives"].sum() == labels.sum()
    assert bins["negatives"].sum() == len(labels) - labels.sum()
    curves = summaries.curves_from_bins(bins)
    assert curves is not None
    # Binning at 1/200 moves AP by at most a little on a few hundred rows.
    assert curves.average_precision == pytest.approx(
        average_precision_score(labels, scores), abs=0.03
    )


def test_class_moments_match_numpy_on_the_raw_rows(reader: sa.Engine, check: Any) -> None:
    moments = dashboard_queries.class_moments(reader, DateWindow(DAY1, DAY2))
    raw = pd.DataFrame(
        check.execute(
            "SELECT label, amount, v14, v1 FROM transactions "
            "WHERE event_time >= '2025-09-20' AND event_time < '2025-09-22'"
        ).fetchall(),
        columns=["label", "amount", "v14", "v1"],
    )
    by_label = moments.set_index("label")
    for label, group in raw.groupby("label"):
        got = by_label.loc[label]
        assert got["rows"] == len(group)
        assert got["amount_mean"] == pytest.approx(group["amount"].mean())
        assert got["v14_mean"] == pytest.approx(group["v14"].mean())
        assert got["v14_std"] == pytest.approx(group["v14"].std(ddof=1))
        assert got["v1_std"] == pytest.approx(group["v1"].std(ddof=1))
    assert moments["label"].notna().all()  # days 1-2 are labelled
    separation = summaries.feature_separation(moments)
    assert set(separation["feature"].head(3)) == {"v14", "v17", "v12"}


def test_amount_and_hour_counts_cover_every_row_once(reader: sa.Engine, check: Any) -> None:
    counts = dashboard_queries.amount_and_hour_counts(reader, DateWindow(DAY1, DAY3))
    (total,) = one(check, "SELECT count(*) FROM transactions")
    assert counts["rows"].sum() == total
    hours = dict(
        check.execute(
            "SELECT extract(hour FROM event_time AT TIME ZONE 'UTC')::int, count(*) "
            "FROM transactions GROUP BY 1"
        ).fetchall()
    )
    assert counts.groupby("hour")["rows"].sum().to_dict() == hours
    # Amount bins: log1p(amount) split evenly between 0 and AMOUNT_LOG_MAX.
    amounts = np.array([r[0] for r in check.execute("SELECT amount FROM transactions")])
    edges = np.linspace(0, dashboard_queries.AMOUNT_LOG_MAX, dashboard_queries.AMOUNT_BINS + 1)
    expected = np.histogram(np.log1p(amounts), bins=edges)[0]
    got = counts.groupby("amount_bin")["rows"].sum().reindex(range(1, 41), fill_value=0)
    assert got.tolist() == expected.tolist()
    distribution = summaries.amount_distribution(counts)
    assert distribution.groupby("class")["rows"].sum().sum() == total


@pytest.fixture(scope="module")
def empty_reader(stack: Settings) -> Iterator[sa.Engine]:
    with scratch_database(stack, prefix="fraudpipe_test_dash_empty") as empty:
        engine = create_engine(empty, "reader")
        yield engine
        engine.dispose()


def test_every_query_answers_an_empty_database(empty_reader: sa.Engine) -> None:
    window = DateWindow(DAY1, DAY3)
    dashboard_queries.check_schema(empty_reader)
    extent = dashboard_queries.data_extent(empty_reader)
    assert extent.first_event is None and extent.last_scored is None and extent.batches == 0
    frames = [
        dashboard_queries.fraud_by_hour(empty_reader, window),
        dashboard_queries.latest_predictions(empty_reader),
        dashboard_queries.batches_overview(empty_reader, window),
        dashboard_queries.batch_status_counts(empty_reader),
        dashboard_queries.batch_quarantine(empty_reader, "nothing:2025-09-20"),
        dashboard_queries.batch_transactions(empty_reader, "nothing:2025-09-20"),
        dashboard_queries.serving_history(empty_reader, window),
        dashboard_queries.score_bins(empty_reader, window, 1),
        dashboard_queries.class_moments(empty_reader, window),
        dashboard_queries.amount_and_hour_counts(empty_reader, window),
    ]
    assert all(f.empty for f in frames)
    _, totals = summaries.split_activity(dashboard_queries.scoring_activity(empty_reader))
    assert totals is None


def test_a_database_without_the_tables_is_named(stack: Settings) -> None:
    engine = create_engine(stack.model_copy(update={"pg_database": "postgres"}), "reader")
    try:
        with pytest.raises(DashboardSchemaError, match="database 'postgres' has no table batches"):
            dashboard_queries.check_schema(engine)
    finally:
        engine.dispose()


def test_an_unreachable_database_is_named(stack: Settings) -> None:
    engine = sa.create_engine(stack.model_copy(update={"pg_port": 1}).reader_db_url)
    unreachable = r"PostgreSQL not reachable at 127\.0\.0\.1:1/"
    with pytest.raises(ServiceUnavailableError, match=unreachable):
        dashboard_queries.check_schema(engine)


def test_refused_versions_are_listed_newest_first(
    reader: sa.Engine, seeded: Settings, check: Any
) -> None:
    name = "refusal-test-model"
    record_refusal(seeded, 4, "it gives every reference row the same score (0.02)", "scorer-a")
    record_refusal(seeded, 5, "it is saved as cloudpickle", "scorer-a")
    record_refusal(seeded.model_copy(update={"model_name": name}), 7, "other model", "scorer-a")
    record_refusal(seeded, 4, "it gives every reference row the same score (0.02)", "scorer-b")
    refused = dashboard_queries.model_refusals(reader, seeded.model_name)
    assert refused["model_version"].tolist() == [4, 5]
    assert refused["refusals"].tolist() == [2, 1]
    assert refused["scorer"].tolist() == ["scorer-b", "scorer-a"]
    assert dashboard_queries.model_refusals(reader, name)["model_version"].tolist() == [7]


def test_the_review_queue_holds_undecided_alerts_by_score(reader: sa.Engine, check: Any) -> None:
    queue = dashboard_queries.open_alerts(reader, limit=1000)
    (alerted,) = one(check, "SELECT count(DISTINCT transaction_id) FROM predictions WHERE is_fraud")
    assert len(queue) == alerted and queue["transaction_id"].is_unique
    assert queue["score"].is_monotonic_decreasing
    assert queue["reasons"].str.startswith("v14 ").all()
    # One row per transaction: the newest version that flagged it.
    (newest,) = one(
        check,
        "SELECT max(model_version) FROM predictions WHERE is_fraud AND transaction_id = %s",
        queue["transaction_id"].iat[0],
    )
    assert queue["model_version"].iat[0] == newest

    decided = queue["transaction_id"].iat[0]
    check.execute(
        "INSERT INTO labels (transaction_id, is_fraud, source, labelled_by, known_at)"
        " VALUES (%s, true, 'analyst', 'ana', now())",
        (decided,),
    )
    after = dashboard_queries.open_alerts(reader, limit=1000)
    assert decided not in set(after["transaction_id"]) and len(after) == len(queue) - 1


def test_the_shadow_comparison_counts_both_versions_on_rows_labelled_now(
    reader: sa.Engine, check: Any
) -> None:
    # With a 48-hour delay, part of the shadowed rows' source labels are not known at the clock.
    counts = dashboard_queries.shadow_counts(reader, timedelta(hours=48))
    expected = one(
        check,
        "SELECT count(*), count(y), count(*) FILTER (WHERE y),"
        " count(*) FILTER (WHERE p.is_fraud AND y IS NOT NULL),"
        " count(*) FILTER (WHERE p.is_fraud AND y), "
        " count(*) FILTER (WHERE s.would_alert AND y IS NOT NULL),"
        " count(*) FILTER (WHERE s.would_alert AND y)"
        " FROM shadow_predictions s JOIN predictions p ON p.transaction_id = s.transaction_id"
        " AND p.model_version = s.champion_version JOIN transactions t"
        " ON t.transaction_id = s.transaction_id,"
        " LATERAL (SELECT coalesce((SELECT l.is_fraud FROM labels l"
        " WHERE l.transaction_id = s.transaction_id ORDER BY l.known_at DESC LIMIT 1),"
        " CASE WHEN t.event_time + interval '48 hours'"
        " <= (SELECT max(event_time) FROM transactions) THEN t.label = 1 END) AS y) f",
    )
    scored, labelled = expected[:2]
    assert 0 < labelled < scored
    assert counts[["challenger_version", "champion_version"]].values.tolist() == [[9, 1]]
    row = counts.iloc[0]
    assert tuple(int(row[c]) for c in counts.columns[2:]) == expected
    compared = summaries.shadow_comparison(counts)
    assert compared["role"].tolist() == ["champion", "challenger"]
    assert compared["version"].tolist() == [1, 9]
    # The cautious challenger alerts on a subset of what the champion alerts on.
    assert compared["alerts"].iat[1] <= compared["alerts"].iat[0]
    assert (compared["precision"].between(0, 1) | compared["precision"].isna()).all()


def test_label_arrival_splits_each_day_by_where_its_labels_came_from(
    reader: sa.Engine, check: Any
) -> None:
    arrival = dashboard_queries.label_arrival(reader, timedelta(0))
    parts = arrival[["dataset", "chargeback", "analyst", "awaiting"]].sum(axis=1)
    assert (parts == arrival["transactions"]).all()
    days = one(
        check, "SELECT count(DISTINCT (event_time AT TIME ZONE 'UTC')::date) FROM transactions"
    )
    assert len(arrival) == days[0]
    # No delay: a source label is known once stored; the rows with neither kind await one.
    unlabelled = one(
        check,
        "SELECT count(*) FROM transactions t WHERE t.label IS NULL AND NOT EXISTS"
        " (SELECT 1 FROM labels l WHERE l.transaction_id = t.transaction_id)",
    )
    assert int(arrival["awaiting"].sum()) == unlabelled[0]
    # A delay longer than the seeded days: no source label is known yet at the clock (the
    # latest event), only what `labels` holds.
    later = dashboard_queries.label_arrival(reader, timedelta(days=SEED.days + 1))
    assert int(later["dataset"].sum()) == 0
    assert (later["chargeback"] + later["analyst"]).tolist() == (
        arrival["chargeback"] + arrival["analyst"]
    ).tolist()
    # As of the end of the first day: only its rows, and no label recorded after it.
    end = datetime.combine(DAY2, datetime.min.time(), tzinfo=UTC)
    then = dashboard_queries.label_arrival(reader, timedelta(0), as_of=end)
    assert then["day"].tolist() == [DAY1]
    awaiting = one(
        check,
        "SELECT count(*) FROM transactions t WHERE (t.event_time AT TIME ZONE 'UTC')::date = %s"
        " AND t.label IS NULL AND NOT EXISTS (SELECT 1 FROM labels l"
        " WHERE l.transaction_id = t.transaction_id AND l.known_at <= %s)",
        DAY1,
        end,
    )[0]
    assert int(then["awaiting"].iat[0]) == awaiting


def test_drift_reads_every_measured_column_with_its_day(reader: sa.Engine, check: Any) -> None:
    drift = dashboard_queries.batch_drift(reader)
    stored = one(
        check, "SELECT count(*), count(DISTINCT (batch_id, model_version)) FROM batch_drift"
    )
    assert len(drift) == stored[0] == 31 * stored[1]
    matrix = summaries.drift_matrix(drift)
    assert list(matrix.index[:2]) == ["amount", "v1"] and matrix.index[-1] == "score"
    assert list(matrix.columns) == [DAY1, DAY2, DAY3]
    # Only v14 on the last day crosses 0.2.
    over = matrix.stack()[lambda x: x > 0.2]
    assert list(over.index) == [("v14", DAY3)]
    rates = dashboard_queries.batch_alert_rates(reader)
    assert (rates["alert_rate"] == rates["alerts"] / rates["rows"]).all()


def test_live_performance_counts_each_version_on_rows_labelled_now(
    reader: sa.Engine, check: Any
) -> None:
    delay = timedelta(hours=48)
    performance = summaries.live_performance(dashboard_queries.live_performance_bins(reader, delay))
    expected = check.execute(
        "WITH x AS (SELECT model_version, 'champion' AS role, transaction_id, score,"
        " is_fraud AS alert FROM predictions UNION ALL SELECT model_version, 'shadow',"
        " transaction_id, score, would_alert FROM shadow_predictions)"
        " SELECT (t.event_time AT TIME ZONE 'UTC')::date, x.model_version, x.role, count(*),"
        " count(*) FILTER (WHERE y), count(*) FILTER (WHERE x.alert),"
        " count(*) FILTER (WHERE x.alert AND y) FROM x JOIN transactions t USING (transaction_id),"
        " LATERAL (SELECT coalesce((SELECT l.is_fraud FROM labels l"
        " WHERE l.transaction_id = x.transaction_id ORDER BY l.known_at DESC LIMIT 1),"
        " CASE WHEN t.event_time + interval '48 hours'"
        " <= (SELECT max(event_time) FROM transactions) THEN t.label = 1 END) AS y) f"
        " WHERE y IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    got = [
        (r.day, r.model_version, r.role, r.labelled, r.frauds, r.alerts, r.caught)
        for r in performance.itertuples()
    ]
    assert got == [tuple(row) for row in expected]
    assert {"champion", "shadow"} <= set(performance["role"])


def test_score_buckets_count_each_days_scores_between_the_edges(
    reader: sa.Engine, check: Any
) -> None:
    edges = (0.01, 0.1, 0.5)
    buckets = dashboard_queries.score_buckets_by_day(reader, 1, edges)
    per_day = buckets.groupby("day")["scored"].sum().to_dict()
    expected = dict(
        check.execute(
            "SELECT b.batch_date, count(*) FROM predictions p JOIN batches b USING (batch_id)"
            " WHERE p.model_version = 1 GROUP BY 1"
        ).fetchall()
    )
    assert per_day == expected
    below_half = one(
        check, "SELECT count(*) FROM predictions WHERE model_version = 1 AND score < 0.5"
    )[0]
    assert int(buckets[buckets["bucket"] < 3]["scored"].sum()) == below_half
