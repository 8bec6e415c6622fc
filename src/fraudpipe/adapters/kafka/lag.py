"""How far behind its partitions a consumer is, without a request to the broker.

Lag is the partition's high watermark minus the consumer's position. Both are known locally:
librdkafka updates the cached high watermark with every fetch response, and the position is
the next offset handed to the application. The scorer commits each micro-batch before asking
for the next one, so between micro-batches the position is also the committed offset.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition


def consumer_lag(consumer: Consumer) -> dict[tuple[str, int], int]:
    """Messages behind the high watermark, per assigned (topic, partition).

    Partitions whose watermark or position is not known yet (just assigned, nothing fetched)
    are left out rather than reported as zero.

    Raises:
        KafkaException: The client could not answer (the caller skips this sample).
    """
    assigned = consumer.assignment()
    if not assigned:
        return {}
    positions = consumer.position(assigned)
    lags: dict[tuple[str, int], int] = {}
    for tp in positions:
        low, high = consumer.get_watermark_offsets(tp, cached=True)
        if high < 0:
            continue
        position = tp.offset if tp.offset >= 0 else low
        if position < 0:
            continue
        lags[(tp.topic, tp.partition)] = max(0, high - position)
    return lags


def expired_before_consumed(
    consumer: Consumer, partitions: list[TopicPartition]
) -> dict[tuple[str, int], int]:
    """Per partition, the offsets the log deleted (retention) before the group consumed them
    (records, and any transaction markers among them).

    The group's committed offset lying below the partition's first offset means those records
    were never scored; ``auto.offset.reset`` would otherwise skip them without a word.

    Raises:
        KafkaException: The broker could not answer.
    """
    lost: dict[tuple[str, int], int] = {}
    for tp in consumer.committed(partitions, timeout=10):
        if tp.offset < 0:
            continue  # nothing committed yet: the group starts from the earliest record
        low, _ = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
        if tp.offset < low:
            lost[(tp.topic, tp.partition)] = low - tp.offset
    return lost
