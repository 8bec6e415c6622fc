"""Every SQL aggregation the dashboard shows: plain functions over a SQLAlchemy engine.

Aggregation happens in PostgreSQL; each function returns a small DataFrame (one row per hour,
batch, class or bin) or a LIMITed page of rows, never a whole table. The dashboard connects as
the read-only role, so nothing here can change data.

Two habits keep a render cheap on millions of rows:

* History queries select transactions by ``event_time`` (indexed) *and* predictions by
  ``batch_id = ANY(<the window's batches>)`` (indexed). The second predicate is implied by the
  first (a batch is one calendar day of event time, and a prediction carries its transaction's
  batch), but the planner cannot know that; without it, it scans every prediction.
* Each query runs with a generous ``work_mem`` so hash joins and sorts of a window stay in
  memory, planner settings suited to scans that return few rows (`read_frame`), and a statement
  timeout so a very wide range cannot pin the database.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from fraudpipe.columns import V_COLUMNS
from fraudpipe.data.window import DateWindow
from fraudpipe.errors import (
    DashboardFilterError,
    DashboardSchemaError,
    ServiceUnavailableError,
)

TABLES: Final = (
    "batches",
    "transactions",
    "predictions",
    "quarantine",
    "dead_letters",
    "model_refusals",
    "alert_reasons",
    "labels",
    "shadow_predictions",
    "batch_drift",
    "batch_alert_rates",
)

#: The engine type the query functions take.
Engine = sa.Engine

STATEMENT_TIMEOUT_MS: Final = 60_000
WORK_MEM: Final = "64MB"

AMOUNT_BINS: Final = 40
AMOUNT_LOG_MAX: Final = math.log1p(32_768.0)
"""Upper edge of the log-amount histogram; larger amounts land in one overflow bin."""

SCORE_BINS: Final = 200


def create_reader_engine(url: str) -> Engine:
    """An engine for the dashboard's read-only role at `url`, with a small pool: one user
    session rarely runs more than a couple of queries at once."""
    return sa.create_engine(url, pool_pre_ping=True, pool_size=3, max_overflow=2)


def read_frame(engine: sa.Engine, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run one read-only query and return its rows as a DataFrame (columns as selected).

    Settings local to the query's transaction: the time zone is UTC, so ``date_trunc`` and
    ``extract(hour)`` bucket by UTC calendar hours and days, like the batches. JIT is off: its
    compile time (measured at up to a second here) exceeds what it saves on these scans. Parallel
    workers are made cheap to start because every query here scans a window of rows and returns
    a few aggregated ones, while the planner's defaults (and its guesses of how many groups a
    multi-column GROUP BY yields) assume large results and keep such scans single-threaded.
    """
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT set_config('TimeZone', 'UTC', true), "
                "set_config('statement_timeout', :timeout, true), "
                "set_config('work_mem', :work_mem, true), "
                "set_config('jit', 'off', true), "
                "set_config('parallel_setup_cost', '10', true), "
                "set_config('parallel_tuple_cost', '0.001', true)"
            ),
            {"timeout": str(STATEMENT_TIMEOUT_MS), "work_mem": WORK_MEM},
        )
        result = conn.execute(sa.text(query), params or {})
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def check_schema(engine: sa.Engine) -> None:
    """Fail with a clear message when the pipeline's tables are not there.

    Raises:
        ServiceUnavailableError: PostgreSQL does not accept the reader's connection.
        DashboardSchemaError: One or more of the tables is missing.
    """
    try:
        frame = read_frame(
            engine,
            "SELECT current_database() AS db, name FROM unnest(CAST(:names AS text[])) AS name "
            "WHERE to_regclass('public.' || name) IS NULL",
            {"names": list(TABLES)},
        )
    except sa.exc.OperationalError as exc:
        url = engine.url
        raise ServiceUnavailableError(
            "PostgreSQL",
            f"{url.host}:{url.port}/{url.database} as {url.username}",
            f"run `fraudpipe stack up` or check FRAUDPIPE_PG_* ({str(exc.orig).strip()})",
        ) from exc
    if not frame.empty:
        raise DashboardSchemaError(str(frame["db"].iloc[0]), frame["name"].tolist())


@dataclass(frozen=True)
class DataExtent:
    """What the database holds, from index endpoints only (cheap on any size).

    Attributes:
        first_event: Earliest transaction event time, ``None`` when no transaction is loaded.
        last_event: Latest transaction event time.
        last_scored: Latest prediction time, ``None`` before anything was scored.
        batches: Number of batches.
        now: The database's clock, to say how long ago things happened.
    """

    first_event: datetime | None
    last_event: datetime | None
    last_scored: datetime | None
    batches: int
    now: datetime


def data_extent(engine: sa.Engine) -> DataExtent:
    """First and last event time, last scoring time and batch count."""
    row = read_frame(
        engine,
        """
        SELECT (SELECT min(event_time) FROM transactions) AS first_event,
               (SELECT max(event_time) FROM transactions) AS last_event,
               (SELECT max(scored_at) FROM predictions) AS last_scored,
               (SELECT count(*) FROM batches) AS batches,
               now() AS now
        """,
    ).iloc[0]
    return DataExtent(
        first_event=_timestamp_or_none(row["first_event"]),
        last_event=_timestamp_or_none(row["last_event"]),
        last_scored=_timestamp_or_none(row["last_scored"]),
        batches=int(row["batches"]),
        now=pd.Timestamp(row["now"]).to_pydatetime(),
    )


def _timestamp_or_none(value: object) -> datetime | None:
    # An empty table's min/max comes back as None (or NaT once pandas has seen the column).
    if not isinstance(value, datetime) or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def window_batch_ids(engine: sa.Engine, window: DateWindow) -> list[str]:
    """Ids of the batches whose day lies in the window."""
    frame = read_frame(
        engine,
        "SELECT batch_id FROM batches WHERE batch_date BETWEEN :first_day AND :last_day",
        {"first_day": window.first_day, "last_day": window.last_day},
    )
    return [str(b) for b in frame["batch_id"]]


def _window_params(engine: sa.Engine, window: DateWindow) -> dict[str, Any]:
    return {
        "start": window.start,
        "end": window.end,
        "batch_ids": window_batch_ids(engine, window),
    }


# --- Live -------------------------------------------------------------------------------------


def latest_predictions(
    engine: sa.Engine, limit: int = 50, alerts_only: bool = False
) -> pd.DataFrame:
    """The most recently scored transactions (or only those flagged as fraud), newest first.

    An alert's ``reasons`` are its stored reasons in words, largest first.
    """
    only_alerts = "WHERE p.is_fraud" if alerts_only else ""
    return read_frame(
        engine,
        f"""
        SELECT l.scored_at, l.transaction_id::text AS transaction_id, l.model_version,
               l.score, l.threshold, l.is_fraud,
               (SELECT string_agg(r.description, '; ' ORDER BY r.rank) FROM alert_reasons r
                WHERE r.transaction_id = l.transaction_id
                  AND r.model_version = l.model_version) AS reasons,
               l.latency_ms, t.event_time, t.amount, t.label, l.batch_id
        FROM (
            SELECT * FROM predictions p {only_alerts} ORDER BY p.scored_at DESC LIMIT :limit
        ) l
        JOIN transactions t ON t.transaction_id = l.transaction_id
        ORDER BY l.scored_at DESC
        """,
        {"limit": limit},
    )


def scoring_activity(engine: sa.Engine, minutes: int = 60) -> pd.DataFrame:
    """Per minute of the latest ``minutes`` of scoring: volume, alerts and latency percentiles.

    The period ends at the newest prediction rather than at now, so a paused consumer still
    shows its last activity (the page says how long ago that was). The last row, with a null
    ``minute``, holds the totals and percentiles over the whole period.
    """
    return read_frame(
        engine,
        """
        SELECT date_trunc('minute', scored_at) AS minute,
               count(*) AS scored,
               count(*) FILTER (WHERE is_fraud) AS flagged,
               min(scored_at) AS first_scored,
               max(scored_at) AS last_scored,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS latency_p50_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS latency_p95_ms,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS latency_p99_ms
        FROM predictions
        WHERE scored_at > (SELECT max(scored_at) FROM predictions) - make_interval(mins => :minutes)
        GROUP BY GROUPING SETS ((date_trunc('minute', scored_at)), ())
        ORDER BY minute NULLS LAST
        """,
        {"minutes": minutes},
    )


# --- Fraud history ----------------------------------------------------------------------------


def fraud_by_hour(engine: sa.Engine, window: DateWindow) -> pd.DataFrame:
    """Per event hour (UTC) and model version: volume, alerts, labels and the confusion counts.

    ``caught`` = flagged and labelled fraud, ``missed`` = not flagged but labelled fraud,
    ``false_alarms`` = flagged but labelled normal; amounts are summed the same way.
    """
    return read_frame(
        engine,
        """
        SELECT date_trunc('hour', t.event_time) AS hour,
               p.model_version,
               count(*) AS scored,
               count(*) FILTER (WHERE p.is_fraud) AS flagged,
               count(t.label) AS labelled,
               count(*) FILTER (WHERE t.label = 1) AS frauds,
               count(*) FILTER (WHERE p.is_fraud AND t.label = 1) AS caught,
               count(*) FILTER (WHERE NOT p.is_fraud AND t.label = 1) AS missed,
               count(*) FILTER (WHERE p.is_fraud AND t.label = 0) AS false_alarms,
               sum(t.amount) AS amount,
               coalesce(sum(t.amount) FILTER (WHERE p.is_fraud), 0) AS amount_flagged,
               coalesce(sum(t.amount) FILTER (WHERE p.is_fraud AND t.label = 1), 0)
                   AS amount_caught,
               coalesce(sum(t.amount) FILTER (WHERE NOT p.is_fraud AND t.label = 1), 0)
                   AS amount_missed
        FROM predictions p
        JOIN transactions t ON t.transaction_id = p.transaction_id
        WHERE t.event_time >= :start AND t.event_time < :end
          AND p.batch_id = ANY(:batch_ids)
        GROUP BY 1, 2
        ORDER BY 1, 2
        """,
        _window_params(engine, window),
    )


# --- Batches & lineage ------------------------------------------------------------------------


def batch_status_counts(engine: sa.Engine) -> pd.DataFrame:
    """Batches and rows per status, over every batch."""
    return read_frame(
        engine,
        """
        SELECT status, count(*) AS batches, coalesce(sum(row_count), 0) AS rows,
               coalesce(sum(quarantined_count), 0) AS quarantined
        FROM batches GROUP BY status ORDER BY status
        """,
    )


def batches_overview(engine: sa.Engine, window: DateWindow, limit: int = 500) -> pd.DataFrame:
    """The window's batches, newest first, with status, row counts and their predictions."""
    return read_frame(
        engine,
        """
        SELECT b.batch_id, b.source, b.batch_date, b.status, b.row_count, b.quarantined_count,
               coalesce(s.predictions, 0) AS predictions, coalesce(s.flagged, 0) AS flagged,
               s.versions, b.is_synthetic, b.loaded_at, b.published_at, b.scored_at
        FROM batches b
        LEFT JOIN LATERAL (
            SELECT count(*) AS predictions, count(*) FILTER (WHERE p.is_fraud) AS flagged,
                   string_agg(DISTINCT p.model_version::text, ', ') AS versions
            FROM predictions p WHERE p.batch_id = b.batch_id
        ) s ON true
        WHERE b.batch_date BETWEEN :first_day AND :last_day
        ORDER BY b.batch_date DESC, b.batch_id
        LIMIT :limit
        """,
        {"first_day": window.first_day, "last_day": window.last_day, "limit": limit},
    )


def batch_quarantine(engine: sa.Engine, batch_id: str) -> pd.DataFrame:
    """Why rows of one batch were quarantined: reasons with counts, most frequent first."""
    return read_frame(
        engine,
        """
        SELECT reason, count(*) AS rows, min(source_row) AS first_source_row,
               max(quarantined_at) AS last_quarantined_at
        FROM quarantine WHERE batch_id = :batch_id
        GROUP BY reason ORDER BY rows DESC, reason LIMIT 100
        """,
        {"batch_id": batch_id},
    )


def batch_transactions(
    engine: sa.Engine,
    batch_id: str,
    page: int = 0,
    page_size: int = 50,
    model_version: int | None = None,
) -> pd.DataFrame:
    """One page of a batch's transactions in source order, each with its prediction.

    Args:
        engine: Read-only engine.
        batch_id: The batch to page through.
        page: Zero-based page number.
        page_size: Rows per page.
        model_version: Show this version's prediction; ``None`` shows the newest version's.
    """
    version_filter = "AND p.model_version = :model_version" if model_version is not None else ""
    return read_frame(
        engine,
        f"""
        SELECT t.source_row, t.transaction_id::text AS transaction_id, t.event_time, t.amount,
               t.label, p.model_version, p.score, p.threshold, p.is_fraud, p.scored_at
        FROM transactions t
        LEFT JOIN LATERAL (
            SELECT p.model_version, p.score, p.threshold, p.is_fraud, p.scored_at
            FROM predictions p
            WHERE p.transaction_id = t.transaction_id {version_filter}
            ORDER BY p.model_version DESC LIMIT 1
        ) p ON true
        WHERE t.batch_id = :batch_id
        ORDER BY t.source_row
        LIMIT :limit OFFSET :offset
        """,
        {
            "batch_id": batch_id,
            "limit": page_size,
            "offset": page * page_size,
            "model_version": model_version,
        },
    )


@dataclass(frozen=True)
class TransactionTrail:
    """Everything recorded about one transaction, from its batch to its alerts.

    Attributes:
        transaction: One row (transaction and its batch), empty if the id is unknown.
        predictions: One row per model version that scored it.
        dead_letters: Dead-lettered messages keyed by this id.
        reasons: Each alert's reasons, by model version and rank.
    """

    transaction: pd.DataFrame
    predictions: pd.DataFrame
    dead_letters: pd.DataFrame
    reasons: pd.DataFrame

    @property
    def found(self) -> bool:
        return not self.transaction.empty


def parse_transaction_id(text: str) -> uuid.UUID:
    """The UUID in a search box, or a clear error.

    Raises:
        DashboardFilterError: The text is not a UUID.
    """
    try:
        return uuid.UUID(text.strip())
    except ValueError as exc:
        raise DashboardFilterError(
            f"'{text.strip()}' is not a transaction id",
            "paste a UUID such as 2f1c0a9e-7d4b-5c3e-9a1f-0b6d8e2c4a57 from a table on this page",
        ) from exc


def transaction_trail(engine: sa.Engine, transaction_id: str) -> TransactionTrail:
    """The whole trail of one transaction: batch, event, scores, thresholds, alerts, label.

    Raises:
        DashboardFilterError: ``transaction_id`` is not a UUID.
    """
    tid = parse_transaction_id(transaction_id)
    params = {"tid": tid, "key": str(tid)}
    transaction = read_frame(
        engine,
        """
        SELECT t.transaction_id::text AS transaction_id, t.batch_id, t.source_row, t.event_time,
               t.amount, t.label, b.source, b.batch_date, b.status AS batch_status,
               b.loaded_at, b.published_at, b.scored_at AS batch_scored_at
        FROM transactions t JOIN batches b ON b.batch_id = t.batch_id
        WHERE t.transaction_id = :tid
        """,
        params,
    )
    predictions = read_frame(
        engine,
        """
        SELECT model_name, model_version, score, threshold, is_fraud, scored_at, latency_ms,
               batch_id
        FROM predictions WHERE transaction_id = :tid ORDER BY model_version
        """,
        params,
    )
    dead_letters = read_frame(
        engine,
        """
        SELECT topic, partition, "offset", error_type, error, received_at
        FROM dead_letters WHERE key = convert_to(:key, 'UTF8')
        ORDER BY received_at DESC LIMIT 20
        """,
        params,
    )
    reasons = read_frame(
        engine,
        """
        SELECT model_version, rank, description, feature, contribution, method
        FROM alert_reasons WHERE transaction_id = :tid ORDER BY model_version, rank
        """,
        params,
    )
    return TransactionTrail(transaction, predictions, dead_letters, reasons)


# --- Review queue -----------------------------------------------------------------------------


def open_alerts(engine: sa.Engine, limit: int = 50) -> pd.DataFrame:
    """Alerts no analyst has decided yet, highest score first, then largest amount.

    One row per transaction: the newest model version that flagged it, its reasons in words
    (largest first) and the transaction.
    """
    return read_frame(
        engine,
        """
        SELECT p.transaction_id::text AS transaction_id, p.score, t.amount, t.event_time,
               p.model_version, p.threshold, p.batch_id,
               (SELECT string_agg(r.description, '; ' ORDER BY r.rank) FROM alert_reasons r
                WHERE r.transaction_id = p.transaction_id
                  AND r.model_version = p.model_version) AS reasons
        FROM predictions p
        JOIN transactions t ON t.batch_id = p.batch_id AND t.transaction_id = p.transaction_id
        WHERE p.is_fraud
          AND NOT EXISTS (
              SELECT 1 FROM labels l
              WHERE l.transaction_id = p.transaction_id AND l.source = 'analyst'
          )
          AND NOT EXISTS (
              SELECT 1 FROM predictions newer
              WHERE newer.transaction_id = p.transaction_id AND newer.is_fraud
                AND newer.model_version > p.model_version
          )
        ORDER BY p.score DESC, t.amount DESC, p.transaction_id
        LIMIT :limit
        """,
        {"limit": limit},
    )


# --- Labels as known now ---------------------------------------------------------------------

#: A transaction's label as known now: the latest row of ``labels`` (a chargeback, an analyst,
#: an import), else the source's own label once ``label_delay`` has passed since the event
#: (`fraudpipe.model.point_in_time`'s rule). "Now" is the pipeline's clock, the latest event
#: stored (the wall clock, give or take seconds, when transactions stream in), or an ``as_of``
#: moment, which also leaves out the rows of ``labels`` known only after it.
_KNOWN_NOW_CTES: Final = """
    clock AS (
        SELECT coalesce(CAST(:as_of AS timestamptz), max(event_time), now()) AS at
        FROM transactions
    ),
    known AS (
        SELECT DISTINCT ON (transaction_id) transaction_id, is_fraud, source
        FROM labels
        WHERE CAST(:as_of AS timestamptz) IS NULL OR known_at <= CAST(:as_of AS timestamptz)
        ORDER BY transaction_id, known_at DESC, recorded_at DESC
    )"""
_SOURCE_LABEL_KNOWN: Final = (
    "(t.label IS NOT NULL AND t.event_time + make_interval(secs => :delay_seconds) <= clock.at)"
)
_KNOWN_NOW: Final = f"coalesce(k.is_fraud, CASE WHEN {_SOURCE_LABEL_KNOWN} THEN t.label = 1 END)"


def label_arrival(
    engine: sa.Engine, label_delay: timedelta, as_of: datetime | None = None
) -> pd.DataFrame:
    """Per event day (UTC): how many transactions' labels are known now (or at ``as_of``), and
    from where; only days before the clock.

    Columns: ``day``, ``transactions``, ``dataset`` (the source's label, matured), ``chargeback``,
    ``analyst``, ``awaiting`` (no label known yet), ``frauds_known`` and ``clock`` (the moment
    "now" stands for). A ``dataset`` row of ``labels`` counts as ``dataset`` too.
    """
    return read_frame(
        engine,
        f"""
        WITH {_KNOWN_NOW_CTES}
        SELECT (t.event_time AT TIME ZONE 'UTC')::date AS day,
               count(*) AS transactions,
               count(*) FILTER (
                   WHERE k.source = 'dataset' OR (k.source IS NULL AND {_SOURCE_LABEL_KNOWN})
               ) AS dataset,
               count(*) FILTER (WHERE k.source = 'chargeback') AS chargeback,
               count(*) FILTER (WHERE k.source = 'analyst') AS analyst,
               count(*) FILTER (WHERE {_KNOWN_NOW} IS NULL) AS awaiting,
               count(*) FILTER (WHERE {_KNOWN_NOW}) AS frauds_known,
               min(clock.at) AS clock
        FROM transactions t
        CROSS JOIN clock
        LEFT JOIN known k ON k.transaction_id = t.transaction_id
        WHERE CAST(:as_of AS timestamptz) IS NULL OR t.event_time < CAST(:as_of AS timestamptz)
        GROUP BY 1
        ORDER BY 1
        """,
        {"delay_seconds": label_delay.total_seconds(), "as_of": as_of},
    )


def shadow_counts(engine: sa.Engine, label_delay: timedelta) -> pd.DataFrame:
    """The challenger in shadow against the champion beside it, on transactions labelled now.

    One row per (challenger, champion) version pair: the transactions both scored, those
    whose label is known now (`label_arrival`'s rule), the frauds among them, and each
    version's alerts and frauds caught among them at its own threshold.
    """
    return read_frame(
        engine,
        f"""
        WITH {_KNOWN_NOW_CTES},
        pairs AS (
            SELECT s.model_version AS challenger_version, s.champion_version,
                   s.would_alert, p.is_fraud AS champion_alert, {_KNOWN_NOW} AS fraud
            FROM shadow_predictions s
            JOIN predictions p
              ON p.transaction_id = s.transaction_id AND p.model_version = s.champion_version
            JOIN transactions t
              ON t.batch_id = s.batch_id AND t.transaction_id = s.transaction_id
            CROSS JOIN clock
            LEFT JOIN known k ON k.transaction_id = s.transaction_id
        )
        SELECT challenger_version, champion_version, count(*) AS scored,
               count(fraud) AS labelled,
               count(*) FILTER (WHERE fraud) AS frauds,
               count(*) FILTER (WHERE champion_alert AND fraud IS NOT NULL) AS champion_alerts,
               count(*) FILTER (WHERE champion_alert AND fraud) AS champion_caught,
               count(*) FILTER (WHERE would_alert AND fraud IS NOT NULL) AS challenger_alerts,
               count(*) FILTER (WHERE would_alert AND fraud) AS challenger_caught
        FROM pairs
        GROUP BY challenger_version, champion_version
        ORDER BY challenger_version DESC, champion_version DESC
        """,
        {"delay_seconds": label_delay.total_seconds(), "as_of": None},
    )


# --- Live performance ---------------------------------------------------------------------------


def live_performance_bins(engine: sa.Engine, label_delay: timedelta) -> pd.DataFrame:
    """Scored transactions whose label is known now, per event day, version and score bin.

    Columns: ``day``, ``model_version``, ``role`` (``champion``: its verdicts were the
    pipeline's, `predictions`; ``shadow``: `shadow_predictions`), ``bin`` (as `score_bins`),
    ``positives``, ``negatives``, ``caught`` and ``false_alarms`` (alerts at the version's own
    threshold), ``amount_caught`` and ``amount_missed`` (frauds' amounts). Labels as
    `label_arrival` counts them.
    """
    return read_frame(
        engine,
        f"""
        WITH {_KNOWN_NOW_CTES},
        scored AS (
            SELECT model_version, 'champion' AS role, transaction_id, batch_id, score,
                   is_fraud AS alert
            FROM predictions
            UNION ALL
            SELECT model_version, 'shadow', transaction_id, batch_id, score, would_alert
            FROM shadow_predictions
        ), labelled AS (
            SELECT (t.event_time AT TIME ZONE 'UTC')::date AS day, x.model_version, x.role,
                   least(width_bucket(x.score, 0, 1, :bins), :bins) AS bin, x.alert, t.amount,
                   {_KNOWN_NOW} AS fraud
            FROM scored x
            JOIN transactions t ON t.batch_id = x.batch_id AND t.transaction_id = x.transaction_id
            CROSS JOIN clock
            LEFT JOIN known k ON k.transaction_id = x.transaction_id
        )
        SELECT day, model_version, role, bin,
               count(*) FILTER (WHERE fraud) AS positives,
               count(*) FILTER (WHERE NOT fraud) AS negatives,
               count(*) FILTER (WHERE alert AND fraud) AS caught,
               count(*) FILTER (WHERE alert AND NOT fraud) AS false_alarms,
               coalesce(sum(amount) FILTER (WHERE alert AND fraud), 0) AS amount_caught,
               coalesce(sum(amount) FILTER (WHERE NOT alert AND fraud), 0) AS amount_missed
        FROM labelled WHERE fraud IS NOT NULL
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2, 3, 4
        """,
        {"delay_seconds": label_delay.total_seconds(), "as_of": None, "bins": SCORE_BINS},
    )


# --- Drift ------------------------------------------------------------------------------------


def batch_drift(engine: sa.Engine) -> pd.DataFrame:
    """Every measured batch's PSI per column, with its day and the version measured.

    Columns: ``day``, ``batch_id``, ``model_version``, ``feature``, ``psi``, ``rows``. One row
    per batch, version and profiled column (`monitoring.batch_drift`); small (31 a version and
    batch), so read whole.
    """
    return read_frame(
        engine,
        """
        SELECT b.batch_date AS day, d.batch_id, d.model_version, d.feature, d.psi, d.rows
        FROM batch_drift d JOIN batches b ON b.batch_id = d.batch_id
        ORDER BY b.batch_date, d.batch_id, d.model_version, d.feature
        """,
    )


def score_buckets_by_day(
    engine: sa.Engine, model_version: int, edges: Sequence[float]
) -> pd.DataFrame:
    """Each day's scores of ``model_version`` counted between ascending ``edges``.

    Columns: ``day`` (the batch's), ``bucket`` (0: below ``edges[0]``; k: from ``edges[k-1]``
    up to ``edges[k]``; ``len(edges)``: at or above the last) and ``scored``. Predictions only,
    no join with the transactions.
    """
    return read_frame(
        engine,
        """
        SELECT b.batch_date AS day, width_bucket(p.score, CAST(:edges AS float8[])) AS bucket,
               count(*) AS scored
        FROM predictions p JOIN batches b ON b.batch_id = p.batch_id
        WHERE p.model_version = :model_version
        GROUP BY 1, 2
        ORDER BY 1, 2
        """,
        {"edges": list(edges), "model_version": model_version},
    )


def batch_alert_rates(engine: sa.Engine) -> pd.DataFrame:
    """Per measured batch and version: rows, alerts, and the alert rate its threshold expects."""
    return read_frame(
        engine,
        """
        SELECT b.batch_date AS day, r.batch_id, r.model_version, r.rows, r.alerts,
               r.alerts::float8 / r.rows AS alert_rate, r.expected_alert_rate
        FROM batch_alert_rates r JOIN batches b ON b.batch_id = r.batch_id
        ORDER BY b.batch_date, r.batch_id, r.model_version
        """,
    )


# --- Models -----------------------------------------------------------------------------------


def model_refusals(engine: sa.Engine, model_name: str) -> pd.DataFrame:
    """The versions of `model_name` a scorer refused to serve, newest refusal first, and why."""
    return read_frame(
        engine,
        """
        SELECT model_version, reason, refusals, first_refused_at, last_refused_at, scorer
        FROM model_refusals WHERE model_name = :model_name
        ORDER BY last_refused_at DESC, model_version DESC
        """,
        {"model_name": model_name},
    )


def serving_history(engine: sa.Engine, window: DateWindow) -> pd.DataFrame:
    """Per model version that scored the window: when it first and last scored, how much."""
    return read_frame(
        engine,
        """
        SELECT model_version, count(*) AS predictions,
               count(*) FILTER (WHERE is_fraud) AS flagged,
               min(threshold) AS threshold_min, max(threshold) AS threshold_max,
               min(scored_at) AS first_scored, max(scored_at) AS last_scored
        FROM predictions WHERE batch_id = ANY(:batch_ids)
        GROUP BY model_version ORDER BY model_version
        """,
        {"batch_ids": window_batch_ids(engine, window)},
    )


def score_bins(engine: sa.Engine, window: DateWindow, model_version: int) -> pd.DataFrame:
    """Labelled scored transactions of one version, counted per score bin and class.

    ``bin`` k (1..SCORE_BINS) holds scores in [(k-1)/SCORE_BINS, k/SCORE_BINS); a score of
    exactly 1 joins the top bin. PR and ROC curves follow from cumulative sums of these counts.
    """
    return read_frame(
        engine,
        """
        SELECT least(width_bucket(p.score, 0, 1, :bins), :bins) AS bin,
               count(*) FILTER (WHERE t.label = 1) AS positives,
               count(*) FILTER (WHERE t.label = 0) AS negatives
        FROM predictions p
        JOIN transactions t ON t.transaction_id = p.transaction_id
        WHERE p.model_version = :model_version AND t.label IS NOT NULL
          AND t.event_time >= :start AND t.event_time < :end
          AND p.batch_id = ANY(:batch_ids)
        GROUP BY 1 ORDER BY 1
        """,
        {**_window_params(engine, window), "model_version": model_version, "bins": SCORE_BINS},
    )


# --- EDA --------------------------------------------------------------------------------------


def class_moments(engine: sa.Engine, window: DateWindow) -> pd.DataFrame:
    """Per label (1 fraud, 0 normal, null unlabelled): row count, amount and V-feature moments.

    Columns: ``label``, ``rows``, ``amount_mean``, ``amount_std``, ``amount_max`` and
    ``<v>_mean``, ``<v>_std`` for v1..v28 (sample standard deviation).
    """
    moments = ",\n".join(f"avg({v}) AS {v}_mean, stddev_samp({v}) AS {v}_std" for v in V_COLUMNS)
    return read_frame(
        engine,
        f"""
        SELECT label, count(*) AS rows, avg(amount) AS amount_mean,
               stddev_samp(amount) AS amount_std, max(amount) AS amount_max,
               {moments}
        FROM transactions
        WHERE event_time >= :start AND event_time < :end
        GROUP BY label ORDER BY label NULLS LAST
        """,
        {"start": window.start, "end": window.end},
    )


def amount_and_hour_counts(engine: sa.Engine, window: DateWindow) -> pd.DataFrame:
    """Rows and amount per label, log-amount bin and hour of day (UTC), in one scan.

    Columns: ``label``, ``amount_bin`` (1..AMOUNT_BINS over log1p(amount) from 0 to
    AMOUNT_LOG_MAX, AMOUNT_BINS + 1 above), ``hour`` (0..23), ``rows``, ``amount``: at most
    3 x 41 x 24 cells, from which `summaries` sums the amount histogram and the hourly pattern.
    One plain GROUP BY rather than GROUPING SETS, because PostgreSQL cannot split grouping sets
    across parallel workers, and reading the window's rows is most of the cost.
    """
    return read_frame(
        engine,
        """
        SELECT label,
               width_bucket(ln(greatest(amount, 0) + 1), 0, :log_max, :bins) AS amount_bin,
               extract(hour FROM event_time)::int AS hour,
               count(*) AS rows, sum(amount) AS amount
        FROM transactions
        WHERE event_time >= :start AND event_time < :end
        GROUP BY 1, 2, 3
        """,
        {
            "start": window.start,
            "end": window.end,
            "log_max": AMOUNT_LOG_MAX,
            "bins": AMOUNT_BINS,
        },
    )
