"""Reading the scorer's Prometheus metrics: text produced by the scorer's own registry."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import generate_latest

from fraudpipe.dashboard.consumer_metrics import histogram_quantile, parse_metrics
from fraudpipe.scoring.metrics import ScoringMetrics

pytestmark = pytest.mark.unit


def test_snapshot_of_the_scorers_own_metrics() -> None:
    metrics = ScoringMetrics()
    metrics.consumer_lag.labels(topic="fraud.transactions", partition="1").set(7)
    metrics.consumer_lag.labels(topic="fraud.transactions", partition="0").set(35)
    metrics.scored.inc(1200)
    metrics.dead_letters.labels(error_type="ValueDeserializationError").inc(2)
    metrics.dead_letters.labels(error_type="UnknownTransactionError").inc(1)
    metrics.errors.labels(kind="db_outage").inc(4)
    metrics.model_version.set(3)
    # 90 transactions at 20 ms and 10 at 2 s: the median sits in the 10-25 ms bucket.
    metrics.end_to_end_seconds.observe_many(np.array([0.02] * 90 + [2.0] * 10))

    snapshot = parse_metrics("http://x/metrics", generate_latest(metrics.registry).decode())

    assert snapshot.total_lag == 42
    assert snapshot.lag["partition"].tolist() == [0, 1]
    assert snapshot.transactions_scored == 1200
    assert snapshot.dead_letters == 3
    assert snapshot.errors == 4
    assert snapshot.model_version == 3
    assert snapshot.end_to_end_p50_s is not None and 0.01 < snapshot.end_to_end_p50_s <= 0.025
    assert snapshot.end_to_end_p95_s is not None and 1.0 < snapshot.end_to_end_p95_s <= 2.5


def test_a_fresh_scorer_has_no_latency_and_no_lag_yet() -> None:
    snapshot = parse_metrics("u", generate_latest(ScoringMetrics().registry).decode())
    assert snapshot.lag.empty and snapshot.total_lag == 0
    assert snapshot.end_to_end_p50_s is None
    assert snapshot.transactions_scored == 0


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 10.0), (0.2, 30.0), (float("inf"), 40.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.15)  # rank 20 halfway in (0.1, 0.2]
    assert histogram_quantile(buckets, 0.25) == pytest.approx(0.1 * 10 / 10)
    assert histogram_quantile(buckets, 0.99) == 0.2  # in +Inf: the largest finite bound
    assert histogram_quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None
