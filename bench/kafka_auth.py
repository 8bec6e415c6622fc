"""What Kafka authentication costs: at connection time, and (not) per message.

Two brokers of the same version and settings, one with every listener on SASL/SCRAM-SHA-512 and
ACLs (the stack's), one in PLAINTEXT with no authorizer (the anchor, given by
``--plaintext-bootstrap``, e.g. a second stack started on other ports by an older checkout):

- connect: a new idempotent producer, from construction to its first acknowledged record
  (TCP, SASL handshake with its PBKDF2 rounds, metadata, producer id), 20 times, median and
  worst;
- produce: 300,000 records of 330 bytes (an Avro transaction's size) through one producer with
  the pipeline's settings, every one acknowledged;
- consume: the same records read back by a new consumer group.

Run: `uv run python bench/kafka_auth.py --plaintext-bootstrap 127.0.0.1:9192`. The topics are
the bench's own and deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from rich.console import Console
from rich.table import Table

from fraudpipe.adapters.kafka.acls import grant, prefix_rights, revoke
from fraudpipe.adapters.kafka.producer import producer_config
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings, get_settings

RECORDS = 300_000
VALUE_BYTES = 330
CONNECTS = 20
PARTITIONS = 6


@contextmanager
def topic(admin_config: dict[str, Any], name: str) -> Iterator[str]:
    admin = AdminClient(admin_config)
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(timeout=30)
    try:
        yield name
    finally:
        admin.delete_topics([name])[name].result(timeout=30)


def connect_seconds(config: dict[str, Any], name: str) -> list[float]:
    """Construction to first acknowledged record of a new producer, `CONNECTS` times."""
    times = []
    for _ in range(CONNECTS):
        started = time.perf_counter()
        producer = Producer(config)
        producer.produce(name, b"x", b"k")
        assert producer.flush(30) == 0
        times.append(time.perf_counter() - started)
    return times


def produce_rate(config: dict[str, Any], name: str) -> float:
    value = os.urandom(VALUE_BYTES)
    acked = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal acked
        acked += err is None

    # Every delivery reported (the outputs preset reports failures only).
    producer = Producer({**config, "on_delivery": on_delivery, "delivery.report.only.error": False})
    producer.produce(name, value, b"warm")
    producer.flush(30)  # connected before the clock starts
    acked = 0
    started = time.perf_counter()
    for i in range(RECORDS):
        while True:
            try:
                producer.produce(name, value, str(i).encode())
                break
            except BufferError:
                producer.poll(0.01)
    assert producer.flush(120) == 0
    seconds = time.perf_counter() - started
    assert acked == RECORDS, acked
    return RECORDS / seconds


def consume_rate(config: dict[str, Any], name: str, group: str) -> float:
    consumer = Consumer(
        {**config, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([name])
    seen, started = 0, 0.0
    deadline = time.monotonic() + 300
    while seen < RECORDS + 1 and time.monotonic() < deadline:
        batch = consumer.consume(num_messages=10_000, timeout=1.0)
        if batch and not started:
            started = time.perf_counter()
        seen += sum(1 for m in batch if m.error() is None)
    seconds = time.perf_counter() - started
    consumer.close()
    return seen / seconds


def measure(
    label: str, admin: dict[str, Any], producer: dict[str, Any], consumer: dict[str, Any], run: str
) -> tuple[str, list[float], float, float]:
    with topic(admin, f"bench.{run}.auth") as name:
        connects = connect_seconds(producer, name)
        produced = produce_rate(producer, name)
        consumed = consume_rate(consumer, name, f"bench-{run}-read")
    return label, connects, produced, consumed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plaintext-bootstrap", required=True, help="the anchor broker")
    args = parser.parse_args()
    console = Console(width=140)
    settings: Settings = get_settings()
    run = uuid.uuid4().hex[:10]

    plain = {"bootstrap.servers": args.plaintext_bootstrap}
    plain_producer = {**producer_config(settings, "bench-auth"), **plain}
    for key in ("security.protocol", "sasl.mechanism", "sasl.username", "sasl.password"):
        plain_producer.pop(key)
    rights = prefix_rights(settings, f"bench.{run}.", f"bench-{run}")
    grant(settings, rights)
    try:
        rows = [
            measure("PLAINTEXT, no authorizer (anchor)", plain, plain_producer, plain, run),
            measure(
                "SASL/SCRAM-SHA-512 + ACLs (the pipeline's)",
                client_config(settings, "admin"),
                producer_config(settings, "bench-auth"),
                client_config(settings, "scorer"),
                run,
            ),
        ]
    finally:
        revoke(settings, rights)

    table = Table(title=f"Kafka authentication: {RECORDS:,} records of {VALUE_BYTES} B")
    for column in ("broker", "connect median ms", "connect worst ms", "produce rec/s",
                   "consume rec/s", "produce vs anchor"):  # fmt: skip
        table.add_column(column, justify="left" if column == "broker" else "right")
    anchor = rows[0][2]
    for label, connects, produced, consumed in rows:
        table.add_row(
            label,
            f"{statistics.median(connects) * 1000:.1f}",
            f"{max(connects) * 1000:.1f}",
            f"{produced:,.0f}",
            f"{consumed:,.0f}",
            f"{produced / anchor:.2f}×",
        )
    console.print(table)


if __name__ == "__main__":
    main()
