"""Latency floors for `bench/stream.py`: what the broker and a consumer give at an offered rate
with no scorer at all, paced and measured as the scorer is.

Two loops, each with the scorer's consumer settings (`consumer_config`) and its way of taking a
micro-batch (`take_micro_batch`):

- **consume only**: a message's latency is its record timestamp → its micro-batch in hand;
- **consume + Kafka transactions**: then one 40-byte record per message goes out, committed
  with the consumed offsets in one Kafka transaction per micro-batch, through the scorer's own
  publish machinery (`scoring.stages`: `OUTPUT_LANES` producers taking micro-batches in turn,
  each filling its transaction at once and committing after the micro-batch before it), with
  no decoding, scoring or PostgreSQL. A message's latency ends when its transaction has
  committed, as the scorer's does.

The first is the floor of any consumer on this broker and machine; the second, of the scorer's
way of making its outputs exactly once (issue 17), whatever else it does. Measured here, the
same way with one producer (each transaction after the last) gave a higher p99 at every rate
(148 / 178 / 174 ms at 1k / 5k / 20k tx/s, against 117 / 107 / 122 with two, one run each).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from confluent_kafka import Consumer, Message, Producer

from fraudpipe.adapters.kafka.consumer import consumer_config
from fraudpipe.adapters.kafka.offsets import next_offsets, take_micro_batch
from fraudpipe.adapters.kafka.transactions import transactional_config
from fraudpipe.config import Settings
from fraudpipe.scoring.pipeline import OUTPUT_LANES
from fraudpipe.scoring.stages import Publish, Stages, Turn

#: Each output record's value: the size of a small prediction.
RECORD: Final = b"x" * 40
#: Seconds to wait for the group's assignment, and for the last message once paced.
JOIN_S: Final = 120.0
DRAIN_S: Final = 300.0


@dataclass(frozen=True)
class Floor:
    what: str
    lanes: int
    """Transactional producers taking micro-batches in turn; 0: no transactions."""

    @property
    def transactions(self) -> bool:
        return self.lanes > 0


CONSUME_ONLY: Final = Floor("floor: consume only", lanes=0)
WITH_TRANSACTIONS: Final = Floor(
    f"floor: consume + Kafka transactions ({OUTPUT_LANES} producers in turn)", OUTPUT_LANES
)
FLOORS: Final = (CONSUME_ONLY, WITH_TRANSACTIONS)


@dataclass(frozen=True)
class Paced:
    """What the pacer sent, over how long, and the first paced record's timestamp (ms)."""

    sent: int
    seconds: float
    from_ms: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


@dataclass
class Stamps:
    """Per message done: its latency (ms) and its record timestamp, micro-batch by micro-batch."""

    latencies: list[npt.NDArray[np.float64]] = field(default_factory=list)
    stamped: list[npt.NDArray[np.float64]] = field(default_factory=list)
    batches: int = 0

    def add(self, stamps_ms: npt.NDArray[np.float64], done_at_s: float) -> None:
        self.batches += 1
        self.latencies.append(done_at_s * 1000.0 - stamps_ms)
        self.stamped.append(stamps_ms)

    def done(self) -> int:
        return sum(len(x) for x in self.latencies)

    def wait_for(self, n: int, still_running: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DRAIN_S
        while self.done() < n and still_running() and time.monotonic() < deadline:
            time.sleep(0.05)

    def paced(self, n: int, paced: Paced, rate: int) -> npt.NDArray[np.float64]:
        """The latencies of the `n` - 1 paced messages, checked to be exactly those.

        The pacer's warm-up record is stamped before its producer has logged in, fetched
        metadata and got its idempotent id; that wait (570-590 ms here) was the max of every
        row, charged to the consumer under test. Only the paced records count.
        """
        every = np.concatenate(self.latencies) if self.latencies else np.empty(0)
        if len(every) != n:
            raise SystemExit(f"at {rate}/s: {len(every)} of {n} done")
        kept = every[np.concatenate(self.stamped) >= paced.from_ms]
        if len(kept) != n - 1:
            raise SystemExit(f"at {rate}/s: {len(kept)} paced records of {n - 1}")
        return kept


def record_stamps_ms(messages: list[Message]) -> npt.NDArray[np.float64]:
    return np.array([m.timestamp()[1] for m in messages], dtype=np.float64)


def floor_at(
    settings: Settings, topic: str, floor: Floor, n: int, pace: Callable[[], Paced]
) -> tuple[Stamps, Paced]:
    """Run `floor`'s loop on `topic` while `pace()` offers its `n` messages (it returns once it
    has sent them all)."""
    own = settings.model_copy(
        update={"consumer_group": f"{settings.consumer_group}-{uuid.uuid4().hex[:8]}"}
    )
    stamps = Stamps()
    assigned, stop = threading.Event(), threading.Event()
    failed: list[BaseException] = []
    group: list[object] = [None]  # the consumer's latest group metadata, for the lanes' commits

    def loop() -> None:
        consumer = Consumer(consumer_config(own, "latency-floor"))
        stages = None
        try:
            if floor.lanes:
                stages = transaction_lanes(own, group, floor.lanes, stamps, stop)
            consumer.subscribe([topic])
            while not stop.is_set():
                if not assigned.is_set() and consumer.assignment():
                    assigned.set()
                batch = [m for m in take_micro_batch(consumer, 10_000, 0.2) if m.error() is None]
                if not batch:
                    continue
                if stages is None:
                    stamps.add(record_stamps_ms(batch), time.time())
                else:
                    # Taken on this thread only, as the scorer does: confluent-kafka serialises
                    # calls on a consumer, so a lane asking would wait for `consume()`.
                    group[0] = consumer.consumer_group_metadata()
                    stages.wait_for_room(stop, lambda: None)
                    stages.submit(batch)
        except BaseException as exc:  # reported by the caller, which would otherwise wait
            failed.append(exc)
        finally:
            if stages is not None:
                stages.close()
            consumer.close()

    runner = threading.Thread(target=loop, daemon=True)
    runner.start()
    deadline = time.monotonic() + JOIN_S
    while not assigned.is_set():
        if failed or time.monotonic() > deadline:
            raise SystemExit(f"the {floor.what} loop did not join its group: {failed}")
        time.sleep(0.1)
    time.sleep(1.0)  # let the first fetches settle, as for the scorer
    try:
        paced = pace()
        stamps.wait_for(n, runner.is_alive)
    finally:
        stop.set()
        runner.join(timeout=60)
    if failed:
        raise SystemExit(f"the {floor.what} loop failed: {failed[0]!r}")
    return stamps, paced


def transaction_lanes(
    settings: Settings, group: list[object], lanes: int, stamps: Stamps, stop: threading.Event
) -> Stages[list[Message], list[Message]]:
    """The scorer's `Stages` with nothing to write, and `lanes` transactional producers that
    take micro-batches in turn: each produces its micro-batch's records into its own open
    transaction at once, then adds the offsets and commits only after the micro-batch before
    it has committed (`Turn`)."""

    def lane(index: int) -> Publish[list[Message]]:
        txn_id = f"{settings.kafka_transactional_id_prefix}-floor-{uuid.uuid4().hex[:8]}-{index}"
        producer = Producer(transactional_config(settings, f"latency-floor-{index}", txn_id))
        producer.init_transactions(30)

        def publish(batch: list[Message], turn: Turn) -> None:
            producer.begin_transaction()
            for message in batch:
                producer.produce(settings.topic_predictions, RECORD, message.key())
            if not turn.wait(stop):
                producer.abort_transaction(30)
                return
            offsets = next_offsets(batch)
            producer.send_offsets_to_transaction(offsets, group[0], 30)
            producer.commit_transaction(30)
            stamps.add(record_stamps_ms(batch), time.time())

        return publish

    return Stages([lambda batch: batch], [lane(i) for i in range(lanes)])
