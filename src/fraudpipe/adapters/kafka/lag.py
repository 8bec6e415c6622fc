"""How far behind its partitions a consumer is, without a request to the broker.

Lag is the partition's high watermark minus the consumer's position. Both are known locally:
librdkafka updates the cached high watermark with every fetch response, and the position is
the next offset handed to the application. The scorer commits each micro-batch before asking
for the next one, so between micro-batches the position is also the committed offset.
"""

from __future__ import annotations

from confluent_kafka import Consumer


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
