"""MLflow down while the serving alias moves: the scorer keeps serving, then switches.

The scorer reaches MLflow through a relay the test owns (`relay`) and polls the alias every
half second. Day A is scored with version 1. Then the relay is cut and the alias moved to
version 2: the scorer cannot see the move, keeps serving version 1 and scores day B with it
(scoring does not stop for MLflow). Once the relay is restored it loads and verifies version 2
and scores day C with it. PostgreSQL and the topics (read_committed) hold one prediction per
transaction, each with the version that scored it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from relay import Relay, ScorerThread
from scoring_support import (
    ingest_days,
    predictions,
    published,
    register_tiny_model,
    set_champion,
)

from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.scoring.runtime import ScoringOptions

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

DAY_ROWS = 600


@pytest.fixture(scope="module")
def env(one_partition: Settings) -> Settings:
    return one_partition


def test_the_alias_moved_during_an_mlflow_outage_is_served_once_it_is_back(
    env: Settings, tmp_path: Path
) -> None:
    second = register_tiny_model(env, seed=5)
    set_champion(env, 1)
    days = ingest_days(env, tmp_path, 3, DAY_ROWS, seed=91)
    relay, relayed_uri = Relay.to_url(env.mlflow_tracking_uri)
    through_relay = env.model_copy(update={"mlflow_tracking_uri": relayed_uri})
    scorer = ScorerThread(through_relay, ScoringOptions(batch_size=200, model_poll_s=0.5))
    service = scorer.service
    try:
        publish_batch(env, days[0])
        scorer.thread.start()
        scorer.wait_until(lambda: len(predictions(env, days[0])) == DAY_ROWS)
        relay.cut()
        cut_at = time.monotonic()
        set_champion(env, second)  # straight to MLflow, not through the relay
        publish_batch(env, days[1])
        scorer.wait_until(lambda: len(predictions(env, days[1])) == DAY_ROWS)
        time.sleep(2.0)  # four more polls that cannot reach MLflow
        assert service.next_model_version == 1
        relay.restore()
        scorer.wait_until(lambda: service.next_model_version == second, seconds=120)
        switched_s = time.monotonic() - cut_at
        publish_batch(env, days[2])
        scorer.wait_until(lambda: len(predictions(env, days[2])) == DAY_ROWS)
    finally:
        scorer.stop()
        relay.close()

    assert not scorer.errors, scorer.errors
    assert [{r.model_version for r in predictions(env, d)} for d in days] == [{1}, {1}, {second}]
    rows = predictions(env)
    assert len(rows) == len({r.transaction_id for r in rows}) == 3 * DAY_ROWS
    flagged = sum(r.is_fraud for r in rows)
    outputs, alerts = published(env, 3 * DAY_ROWS, flagged)
    assert len(outputs) == len({p.transaction_id for p in outputs}) == 3 * DAY_ROWS
    assert {(p.transaction_id, p.model_version) for p in outputs} == {
        (r.transaction_id, r.model_version) for r in rows
    }
    assert len(alerts) == len({a.transaction_id for a in alerts}) == flagged
    print(f"alias moved in an MLflow cut: version {second} served {switched_s:.1f} s after the cut")
