"""The pipeline's Kafka topics, created and configured explicitly (the broker never auto-creates).

`ensure_topics` is idempotent: it creates what is missing, resets configs that drifted, and
leaves partition counts of existing topics alone (it reports a difference instead: adding
partitions is a deliberate operation, and shrinking is impossible).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from confluent_kafka import KafkaError, KafkaException

# The documented import path, though the package does not mark these as re-exported.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError, TopicSetupError

_DAY_MS: Final = 24 * 3600 * 1000
#: The dead-letter topic is low-volume and read by people: one partition keeps it one ordered
#: log that is simple to inspect and replay.
DLQ_PARTITIONS: Final = 1
#: Replicas per partition on a cluster of at least this many brokers (1 on the local stack).
TARGET_REPLICATION: Final = 3

#: Producers compress with the same codec, so the broker stores batches as they arrive instead
#: of recompressing them; lz4 because CPU, not disk, is what two shared cores run out of.
COMPRESSION: Final = "lz4"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How one topic should look."""

    name: str
    partitions: int
    retention_days: int
    purpose: str

    def config(self, replication_factor: int) -> dict[str, str]:
        """Topic-level configs (strings, as the admin API takes them)."""
        return {
            "cleanup.policy": "delete",
            "retention.ms": str(self.retention_days * _DAY_MS),
            "compression.type": COMPRESSION,
            # With acks=all, a write succeeds only when this many replicas have it: one fewer
            # than the replicas, so one broker may be down without stopping the pipeline.
            "min.insync.replicas": str(max(1, replication_factor - 1)),
            "unclean.leader.election.enable": "false",
            # Record timestamps are set by the producer: end-to-end latency is measured from them.
            "message.timestamp.type": "CreateTime",
        }


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The five topics of the pipeline, named and sized from settings."""
    n = settings.kafka_default_partitions
    # The scorer writes the outputs in transactions: only read_committed readers see each
    # record exactly once (read_uncommitted ones also see aborted attempts).
    once = "; read with isolation.level=read_committed"
    return [
        TopicSpec(settings.topic_transactions, n, 7, "transactions to score (replay window: 7 d)"),
        TopicSpec(settings.topic_predictions, n, 7, "every prediction" + once),
        TopicSpec(settings.topic_alerts, n, 30, "high-risk predictions for analysts" + once),
        TopicSpec(
            settings.topic_dlq, DLQ_PARTITIONS, 30, "undecodable or invalid transactions" + once
        ),
        # Idempotent, not transactional: each decision is acknowledged before the API
        # answers, and the recorder writes it to PostgreSQL idempotently on its id.
        TopicSpec(settings.topic_decisions, n, 30, "every decision of the scoring API"),
    ]


class TopicAction(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    RECONFIGURED = "reconfigured"


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    """What `ensure_topics` found or did for one topic."""

    spec: TopicSpec
    action: TopicAction
    partitions: int
    replication_factor: int
    changed_configs: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def ensure_topics(settings: Settings, *, timeout: float = 30.0) -> list[TopicOutcome]:
    """Create the pipeline's topics if missing and bring their configs to the spec.

    Args:
        settings: Broker address and topic names.
        timeout: Bound, in seconds, on each admin request.

    Returns:
        One outcome per topic, in `topic_specs` order.

    Raises:
        ServiceUnavailableError: The broker cannot be reached.
        TopicSetupError: The broker refused to create or configure a topic.
    """
    admin = AdminClient(client_config(settings, "admin"))
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ServiceUnavailableError("Kafka", settings.kafka_admin_bootstrap_servers) from exc
    replication = min(TARGET_REPLICATION, len(metadata.brokers))
    specs = topic_specs(settings)
    missing = [s for s in specs if s.name not in metadata.topics]
    created = _create(admin, missing, replication, timeout)
    if missing:
        metadata = _wait_for_topics(admin, [s.name for s in specs], timeout)
    outcomes = []
    for spec in specs:
        topic = metadata.topics[spec.name]
        partitions = len(topic.partitions)
        replicas = min(len(p.replicas) for p in topic.partitions.values())
        wanted = spec.config(replicas)
        changed = () if spec.name in created else _reconcile(admin, spec.name, wanted, timeout)
        notes = []
        if partitions != spec.partitions:
            notes.append(
                f"has {partitions} partitions, spec says {spec.partitions}: left as is "
                "(changing it remaps keys to partitions; do it deliberately)"
            )
        if spec.name in created:
            action = TopicAction.CREATED
        else:
            action = TopicAction.RECONFIGURED if changed else TopicAction.UNCHANGED
        outcomes.append(TopicOutcome(spec, action, partitions, replicas, changed, tuple(notes)))
    return outcomes


def _create(
    admin: AdminClient, specs: list[TopicSpec], replication: int, timeout: float
) -> set[str]:
    """Create `specs`; returns the names this call created (not those a racer created)."""
    if not specs:
        return set()
    new = [NewTopic(s.name, s.partitions, replication, config=s.config(replication)) for s in specs]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    created = set()
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # another `ensure` won the race; its topic gets reconciled below
            raise TopicSetupError(name, f"creation refused: {exc.args[0].str()}") from exc
        created.add(name)
    return created


def _wait_for_topics(admin: AdminClient, names: list[str], timeout: float) -> ClusterMetadata:
    """Cluster metadata once it lists every topic in `names` (creation propagates async)."""
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout)
        absent = [n for n in names if n not in metadata.topics]
        if not absent:
            return metadata
        if time.monotonic() > deadline:
            raise TopicSetupError(absent[0], f"created, but still not in metadata after {timeout}s")
        time.sleep(0.2)


def _reconcile(
    admin: AdminClient, topic: str, wanted: Mapping[str, str], timeout: float
) -> tuple[str, ...]:
    """Set the configs of `topic` that differ from `wanted`; returns their names."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    try:
        current = admin.describe_configs([resource], request_timeout=timeout)[resource].result(
            timeout=timeout
        )
    except KafkaException as exc:
        raise TopicSetupError(topic, f"cannot read its configs: {exc.args[0].str()}") from exc
    drifted = sorted(k for k, v in wanted.items() if k not in current or current[k].value != v)
    if not drifted:
        return ()
    entries = [
        ConfigEntry(k, wanted[k], incremental_operation=AlterConfigOpType.SET) for k in drifted
    ]
    target = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    try:
        admin.incremental_alter_configs([target], request_timeout=timeout)[target].result(
            timeout=timeout
        )
    except KafkaException as exc:
        raise TopicSetupError(topic, f"cannot set {drifted}: {exc.args[0].str()}") from exc
    return tuple(drifted)
