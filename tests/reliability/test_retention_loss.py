"""Retention deleted records the scorer never read: the loss is loud, and `--resend` repairs it.

A scorer scores a first day and commits. A second day is published; before the scorer comes
back, records of it are deleted from the log (what retention does to a scorer down too long:
``DeleteRecords``, the same operation). The next scorer says so when it is assigned the
partition (a log line, `records_expired_unscored`, the run's summary) and scores what is left;
`publish_batch(..., resend=True)` then sends the batch's unscored transactions, and each
transaction ends with one prediction, on PostgreSQL and on the predictions topic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]
from scoring_support import (
    exactly_once,
    ingest_ulb_day,
    predictions,
    published,
    write_ulb_day,
)

from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import ScoringService

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

FIRST, SECOND, DELETED = 100, 300, 150


@pytest.fixture(scope="module")
def env(one_partition: Settings) -> Settings:
    return exactly_once(one_partition)


def _score(settings: Settings) -> ScoringService:
    service = ScoringService(settings, ScoringOptions(batch_size=100, idle_exit_s=4.0))
    service.run()
    return service


def test_records_deleted_before_scoring_are_reported_and_resent(
    env: Settings, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    write_ulb_day(first, FIRST, seed=41)
    write_ulb_day(second, SECOND, seed=42, day_offset=1)
    first_batch = ingest_ulb_day(env, first)
    publish_batch(env, first_batch)
    assert _score(env).summary.expired_unscored == 0
    second_batch = ingest_ulb_day(env, second)
    publish_batch(env, second_batch)
    admin = AdminClient(client_config(env, "admin"))
    cut = TopicPartition(env.topic_transactions, 0, FIRST + DELETED)
    [done] = admin.delete_records([cut]).values()
    assert done.result(timeout=30).low_watermark == FIRST + DELETED  # the new first offset

    service = _score(env)

    assert service.summary.expired_unscored == DELETED
    sample = service.metrics.registry.get_sample_value(
        "fraudpipe_scorer_records_expired_unscored_total",
        {"topic": env.topic_transactions, "partition": "0"},
    )
    assert sample == DELETED
    # Offsets, not records: the first batch's transaction marker took the offset after its
    # records, so the cut took DELETED - 1 of the second batch's records.
    assert len(predictions(env, second_batch)) == SECOND - (DELETED - 1)

    resent = publish_batch(env, second_batch, resend=True)
    assert resent.records == DELETED - 1 and resent.status == "published"
    _score(env)

    rows = predictions(env, second_batch)
    assert len(rows) == len({r.transaction_id for r in rows}) == SECOND
    flagged = sum(r.is_fraud for r in predictions(env))
    outputs, alerts = published(env, FIRST + SECOND, flagged)
    assert len(outputs) == len({p.transaction_id for p in outputs}) == FIRST + SECOND
    assert len(alerts) == flagged
