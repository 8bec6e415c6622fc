"""Synthetic history for the dashboard's tests and benchmark, generated inside PostgreSQL.

Rows come from `generate_series` and a seeded `random()`, so two million take one statement per
table and no Python loop. Use it on a scratch database (`scratch_db`), never on the
pipeline's own; it writes as the app role, like the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import psycopg

from fraudpipe.adapters.postgres.connect import conninfo
from fraudpipe.config import Settings

V_COLUMNS = [f"v{i}" for i in range(1, 29)]


@dataclass(frozen=True)
class SyntheticData:
    """Shape of the synthetic history `seed_synthetic` writes.

    Attributes:
        transactions: Rows in `transactions` (and, one each, in `predictions`).
        days: Calendar days (UTC) the event times spread over, one batch per day.
        first_day: The first of those days.
        fraud_rate: Share of labelled rows with label 1.
        unlabelled_days: The last days whose rows have no label yet.
        versions: Model versions; version k scores the k-th equal slice of days.
        seed: Seed of PostgreSQL's `random()`; same seed, same rows.
        unscored_every: Every n-th source row has no prediction yet.
        rescored_every: Every n-th source row (offset 1) is scored again by the next version,
            as a shadow challenger would.
    """

    transactions: int = 600
    days: int = 3
    first_day: date = date(2025, 9, 20)
    fraud_rate: float = 0.05
    unlabelled_days: int = 0
    versions: int = 2
    seed: float = 0.42
    unscored_every: int = 100
    rescored_every: int = 50
    source: str = "synthetic-test"
    model_name: str = "fraud-detector"
    threshold: float = 0.5


def seed_synthetic(settings: Settings, data: SyntheticData) -> None:
    """Fill empty tables with `data.transactions` rows, their predictions and batches.

    Fraud rows have shifted V-features (v14, v17, v12 lower; v4, v11 higher), larger amounts and
    mostly high scores, so every dashboard chart has a signal to show. Also writes two quarantined
    rows and one dead letter keyed by the first transaction's id.
    """
    span_seconds = data.days * 86_400
    v_exprs = []
    for i, v in enumerate(V_COLUMNS, start=1):
        shift = {14: -6.0, 17: -5.0, 12: -4.0, 4: 3.0, 11: 2.5}.get(i, 0.0)
        # Box-Muller turns two uniforms into one standard normal.
        v_exprs.append(
            f"(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))"
            f" + CASE WHEN g.is_fraud THEN {shift} ELSE 0 END AS {v}"
        )
    params = {
        "n": data.transactions,
        "span": span_seconds,
        "first_day": data.first_day,
        "start": datetime.combine(data.first_day, time(), UTC),
        "fraud_rate": data.fraud_rate,
        "source": data.source,
        "labelled_until": data.days - data.unlabelled_days,
        "versions": data.versions,
        "days": data.days,
        "model_name": data.model_name,
        "threshold": data.threshold,
        "unscored_every": data.unscored_every,
        "rescored_every": data.rescored_every,
    }
    with psycopg.connect(conninfo(settings, "app")) as conn:
        conn.execute("SELECT setseed(%s)", (data.seed,))
        conn.execute(
            """
            INSERT INTO batches (batch_id, source, batch_date, is_synthetic, row_count,
                                 content_sha256, status, loaded_at, published_at, scored_at)
            SELECT %(source)s || ':' || (d AT TIME ZONE 'UTC')::date, %(source)s,
                   (d AT TIME ZONE 'UTC')::date, true, 0, md5(d::text), 'scored',
                   d + interval '1 day', d + interval '25 hours', d + interval '26 hours'
            FROM generate_series(%(start)s, %(start)s + (%(days)s - 1) * interval '1 day',
                                 interval '1 day') AS d
            """,
            params,
        )
        conn.execute(
            "SELECT fraudpipe_batch_table(batch_id), fraudpipe_attach_batch_table(batch_id) "
            "FROM batches WHERE source = %(source)s",
            params,
        )
        conn.execute(
            f"""
            INSERT INTO transactions (transaction_id, batch_id, source_row, event_time, amount,
                                      {", ".join(V_COLUMNS)}, label)
            SELECT md5(%(source)s || ':' || g.i)::uuid,
                   %(source)s || ':' || (g.t AT TIME ZONE 'UTC')::date,
                   g.i, g.t,
                   round((CASE WHEN g.is_fraud THEN 300 ELSE 60 END
                          * -ln(1 - random()))::numeric, 2)::double precision,
                   {", ".join(v_exprs)},
                   CASE WHEN (g.t AT TIME ZONE 'UTC')::date
                             < %(first_day)s::date + %(labelled_until)s
                        THEN g.is_fraud::int END
            FROM (
                SELECT i,
                       %(start)s + make_interval(secs => (i - 1) * %(span)s::float8 / %(n)s) AS t,
                       random() < %(fraud_rate)s AS is_fraud
                FROM generate_series(1, %(n)s) AS i
            ) AS g
            """,
            params,
        )
        conn.execute(
            """
            UPDATE batches b SET row_count = c.n
            FROM (SELECT batch_id, count(*) AS n FROM transactions GROUP BY batch_id) AS c
            WHERE c.batch_id = b.batch_id
            """
        )
        conn.execute(
            """
            INSERT INTO predictions (transaction_id, model_name, model_version, batch_id, score,
                                     is_fraud, threshold, scored_at, latency_ms)
            SELECT s.transaction_id, %(model_name)s, s.version, s.batch_id, s.score,
                   s.score >= %(threshold)s, %(threshold)s, s.scored_at, s.latency_ms
            FROM (
                SELECT t.transaction_id, t.batch_id,
                       1 + least(%(versions)s - 1,
                                 floor(extract(epoch FROM t.event_time - %(start)s)
                                       / %(span)s * %(versions)s))::int AS version,
                       CASE WHEN t.v14 < -3 THEN 0.35 + 0.65 * random()
                            ELSE 0.6 * random() ^ 3 END AS score,
                       t.event_time + interval '26 hours'
                         + make_interval(secs => random()) AS scored_at,
                       5 + 45 * random() AS latency_ms
                FROM transactions t
                WHERE t.source_row %% %(unscored_every)s <> 0
            ) AS s
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO predictions (transaction_id, model_name, model_version, batch_id, score,
                                     is_fraud, threshold, scored_at, latency_ms)
            SELECT p.transaction_id, p.model_name, p.model_version + 1, p.batch_id,
                   least(1.0, p.score * 1.2), p.score * 1.2 >= %(threshold)s, %(threshold)s,
                   p.scored_at + interval '1 minute', p.latency_ms
            FROM predictions p JOIN transactions t ON t.transaction_id = p.transaction_id
            WHERE t.source_row %% %(rescored_every)s = 1 AND p.model_version < %(versions)s
            """,
            params,
        )
        # A challenger (version 9) in shadow beside version 1, a little more cautious.
        conn.execute(
            """
            INSERT INTO shadow_predictions (transaction_id, model_name, model_version,
                                            champion_version, batch_id, score, would_alert,
                                            threshold, scored_at)
            SELECT transaction_id, model_name, 9, model_version, batch_id, score * 0.9,
                   score * 0.9 >= threshold, threshold, scored_at
            FROM predictions WHERE model_version = 1
            """
        )
        # Each alert's two reasons, as the scorer words them.
        conn.execute(
            """
            INSERT INTO alert_reasons (transaction_id, model_version, rank, feature, contribution,
                                       description, method)
            SELECT p.transaction_id, p.model_version, r.rank, r.feature, r.contribution,
                   r.feature || ' (an anonymised behaviour component) = '
                       || round(t.v14::numeric, 2) || ', far below normal', 'linear'
            FROM predictions p JOIN transactions t ON t.transaction_id = p.transaction_id,
                 (VALUES (1::smallint, 'v14', 2.5::float8), (2::smallint, 'v17', 1.25::float8))
                     AS r(rank, feature, contribution)
            WHERE p.is_fraud
            """
        )
        # Drift as the daily DAG measures it: per batch and version that scored it, 31
        # columns; v14 drifts on the last day.
        conn.execute(
            """
            INSERT INTO batch_drift (batch_id, model_name, model_version, feature, psi, rows,
                                     measured_at)
            SELECT p.batch_id, p.model_name, p.model_version, f.feature,
                   CASE WHEN f.feature = 'v14' AND b.batch_date = max(b.batch_date) OVER ()
                        THEN 0.35 ELSE 0.004 * f.n END,
                   p.rows, now()
            FROM (SELECT batch_id, model_name, model_version, count(*) AS rows
                  FROM predictions GROUP BY 1, 2, 3) p
            JOIN batches b ON b.batch_id = p.batch_id,
                 unnest(ARRAY['amount', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9',
                              'v10', 'v11', 'v12', 'v13', 'v14', 'v15', 'v16', 'v17', 'v18',
                              'v19', 'v20', 'v21', 'v22', 'v23', 'v24', 'v25', 'v26', 'v27',
                              'v28', 'hour', 'score']) WITH ORDINALITY AS f(feature, n)
            """
        )
        conn.execute(
            """
            INSERT INTO batch_alert_rates (batch_id, model_name, model_version, rows, alerts,
                                           expected_alert_rate, measured_at)
            SELECT batch_id, model_name, model_version, count(*),
                   count(*) FILTER (WHERE is_fraud), 0.01, now()
            FROM predictions GROUP BY 1, 2, 3
            """
        )
        conn.execute(
            """
            INSERT INTO quarantine (batch_id, source, source_row, reason, raw)
            VALUES (%(source)s || ':' || %(first_day)s::date, %(source)s, 900001,
                    'amount: less_than(0)', '{"Amount": -1}'),
                   (%(source)s || ':' || %(first_day)s::date, %(source)s, 900002,
                    'v3: not_nullable', '{"V3": null}')
            """,
            params,
        )
        conn.execute(
            """
            UPDATE batches SET quarantined_count = 2
            WHERE batch_id = %(source)s || ':' || %(first_day)s::date
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO dead_letters (topic, partition, "offset", key, value, error_type, error)
            VALUES ('fraud.transactions', 0, 7,
                    convert_to(md5(%(source)s || ':' || 1)::uuid::text, 'UTF8'),
                    '\\x00ff'::bytea, 'ValueDeserializationError', 'unknown magic byte')
            """,
            params,
        )
