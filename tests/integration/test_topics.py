"""`ensure_topics` against the real broker: creates, is idempotent, repairs drifted configs.

Topics are unique per test (`test.<unique>.*`) and deleted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The documented import path, though the package does not mark these as re-exported.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)
from topic_configs import served_configs, wait_until_served

from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.adapters.kafka.topics import TopicAction, ensure_topics, topic_specs
from fraudpipe.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

_TIMEOUT = 30.0


@pytest.fixture
def own(stack: Settings, unique: str) -> Settings:
    return stack.model_copy(
        update={
            "topic_transactions": f"test.{unique}.transactions",
            "topic_predictions": f"test.{unique}.predictions",
            "topic_alerts": f"test.{unique}.alerts",
            "topic_dlq": f"test.{unique}.transactions.dlq",
            "topic_decisions": f"test.{unique}.decisions",
        }
    )


@pytest.fixture
def admin(own: Settings) -> Iterator[AdminClient]:
    client = AdminClient(client_config(own, "admin"))
    yield client
    names = [s.name for s in topic_specs(own)]
    existing = [n for n in names if n in client.list_topics(timeout=_TIMEOUT).topics]
    if existing:
        for future in client.delete_topics(existing, operation_timeout=_TIMEOUT).values():
            future.result(timeout=_TIMEOUT)


def test_ensure_creates_topics_as_specified_then_changes_nothing(
    admin: AdminClient, own: Settings
) -> None:
    first = ensure_topics(own)
    second = ensure_topics(own)

    assert [o.action for o in first] == [TopicAction.CREATED] * 5
    assert [o.action for o in second] == [TopicAction.UNCHANGED] * 5
    partitions = {o.spec.name: o.partitions for o in second}
    assert partitions == {
        own.topic_transactions: own.kafka_default_partitions,
        own.topic_predictions: own.kafka_default_partitions,
        own.topic_alerts: own.kafka_default_partitions,
        own.topic_dlq: 1,
        own.topic_decisions: own.kafka_default_partitions,
    }
    metadata = admin.list_topics(timeout=_TIMEOUT)
    for outcome in second:
        assert len(metadata.topics[outcome.spec.name].partitions) == outcome.partitions
        configs = served_configs(admin, outcome.spec.name)
        for key, value in outcome.spec.config(outcome.replication_factor).items():
            assert configs[key] == value, (outcome.spec.name, key)
    assert served_configs(admin, own.topic_alerts)["retention.ms"] == str(30 * 24 * 3600 * 1000)


def test_ensure_repairs_a_drifted_config(admin: AdminClient, own: Settings) -> None:
    ensure_topics(own)
    drift = ConfigResource(
        ConfigResource.Type.TOPIC,
        own.topic_predictions,
        incremental_configs=[
            ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([drift])[drift].result(timeout=_TIMEOUT)
    wait_until_served(admin, own.topic_predictions, "retention.ms", lambda v: v == "60000")

    outcomes = {o.spec.name: o for o in ensure_topics(own)}

    repaired = outcomes[own.topic_predictions]
    assert repaired.action is TopicAction.RECONFIGURED
    assert repaired.changed_configs == ("retention.ms",)
    week = str(7 * 24 * 3600 * 1000)
    wait_until_served(admin, own.topic_predictions, "retention.ms", lambda v: v == week)
    assert outcomes[own.topic_transactions].action is TopicAction.UNCHANGED


def test_ensure_reports_but_keeps_a_different_partition_count(
    admin: AdminClient, own: Settings
) -> None:
    fewer = own.model_copy(update={"kafka_default_partitions": 2})
    ensure_topics(fewer)

    outcomes = {o.spec.name: o for o in ensure_topics(own)}

    kept = outcomes[own.topic_transactions]
    assert kept.partitions == 2
    assert "2 partitions" in kept.notes[0]
    assert outcomes[own.topic_dlq].notes == ()
