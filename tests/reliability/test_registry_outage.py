"""The registry down while messages with a new schema id arrive: the scorer waits, loses nothing.

The scorer reaches the registry through a relay the test owns (`relay`). Day A is scored with
the contract's first version. Then the relay is cut, a second version of the transaction
contract is registered (an optional field; a compatible change) and day B is published with
it: the scorer cannot look the new id up, so it waits (an outage, not a dead letter). Once the
relay is restored it resolves the id and scores day B. PostgreSQL and the topics
(read_committed) hold one prediction per transaction, and the dead-letter topic none.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema
from relay import Relay, ScorerThread
from scoring_support import (
    ingest_days,
    predictions,
    published,
    read_topic,
)

from fraudpipe.adapters.avro import Contract, registry_client
from fraudpipe.adapters.avro.schemas import load_schema_str
from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.retry import Backoff
from fraudpipe.scoring.runtime import ScoringOptions

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

DAY_ROWS = 1_000


@pytest.fixture(scope="module")
def env(one_partition: Settings) -> Settings:
    return one_partition


def _second_version(settings: Settings) -> int:
    """Register the transaction contract with one more optional field; its new schema id."""
    schema = json.loads(load_schema_str(Contract.TRANSACTION))
    schema["fields"].append({"name": "channel", "type": ["null", "string"], "default": None})
    with registry_client(settings, "admin") as client:
        return client.register_schema(
            Contract.TRANSACTION.subject(settings), Schema(json.dumps(schema), "AVRO")
        )


def test_new_schema_ids_during_a_registry_outage_are_waited_for(
    env: Settings, tmp_path: Path
) -> None:
    days = ingest_days(env, tmp_path, 2, DAY_ROWS, seed=81)
    relay, relayed_url = Relay.to_url(env.schema_registry_url)
    through_relay = env.model_copy(update={"schema_registry_url": relayed_url})
    scorer = ScorerThread(
        through_relay, ScoringOptions(batch_size=100, backoff=Backoff(first=0.2, cap=1.0))
    )
    try:
        publish_batch(env, days[0])
        scorer.thread.start()
        scorer.wait_until(lambda: len(predictions(env, days[0])) == DAY_ROWS)
        relay.cut()
        cut_at = time.monotonic()
        new_id = _second_version(env)
        publish_batch(env, days[1])  # with the new version, the subject's latest
        time.sleep(5.0)
        assert predictions(env, days[1]) == [], "scored without the registry?"
        relay.restore()
        scorer.wait_until(lambda: len(predictions(env, days[1])) == DAY_ROWS, seconds=180)
        recovered_s = time.monotonic() - cut_at
    finally:
        scorer.stop()
        relay.close()

    assert not scorer.errors, scorer.errors
    newest = read_topic(env, env.topic_transactions, 2 * DAY_ROWS)[-1].value() or b""
    assert int.from_bytes(newest[1:5], "big") == new_id
    rows = predictions(env)
    assert len(rows) == len({r.transaction_id for r in rows}) == 2 * DAY_ROWS
    flagged = sum(r.is_fraud for r in rows)
    outputs, alerts = published(env, 2 * DAY_ROWS, flagged)
    assert len(outputs) == len({p.transaction_id for p in outputs}) == 2 * DAY_ROWS
    assert len(alerts) == len({a.transaction_id for a in alerts}) == flagged
    assert read_topic(env, env.topic_dlq, 0, quiet_s=1.0) == []
    print(f"registry cut 5 s with a new schema id: day B scored {recovered_s:.1f} s after the cut")
