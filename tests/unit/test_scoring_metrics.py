"""The batch histogram exposes what prometheus_client's Histogram would for the same values."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from fraudpipe.scoring.metrics import LATENCY_BUCKETS, BatchHistogram, ScoringMetrics

pytestmark = pytest.mark.unit


def test_batch_observations_match_one_by_one_observations() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.exponential(0.2, 5000), np.array(LATENCY_BUCKETS), [1e6, 0.0]])
    reference_registry = CollectorRegistry()
    reference = Histogram("h", "h", buckets=LATENCY_BUCKETS, registry=reference_registry)
    for v in values:
        reference.observe(float(v))
    batch_registry = CollectorRegistry()
    batched = BatchHistogram("h", "h", LATENCY_BUCKETS)
    batch_registry.register(batched)
    batched.observe_many(values[:1000])
    batched.observe_many(values[1000:])

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): s.value
            for m in registry.collect()
            for s in m.samples
            if not s.name.endswith("_created")
        }

    got, want = samples(batch_registry), samples(reference_registry)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key]), key


def test_each_service_instance_has_its_own_registry() -> None:
    first, second = ScoringMetrics(), ScoringMetrics()
    first.consumed.inc(3)
    assert first.registry.get_sample_value("fraudpipe_scorer_messages_consumed_total") == 3
    assert second.registry.get_sample_value("fraudpipe_scorer_messages_consumed_total") == 0
