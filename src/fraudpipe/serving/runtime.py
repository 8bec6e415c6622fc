"""One API worker's moving parts, and the path of a request through them.

A request's transactions are decided once each, in batches, one batch at a time
(`Runtime._decide_pending`): every transaction asked for while the last batch was looked up and
scored joins the next. So a batch grows with the load, and its fixed costs (a lookup, a model
call, a produce) are shared by more requests the busier the worker is. Each batch:
1. **A repeat gets the first answer.** The worker's recent decisions (a bounded cache), then
   the decisions in flight in this worker (a concurrent request with the same id waits for
   the first), then PostgreSQL (`api_decisions`, on one asynchronous connection, within
   `LOOKUP_TIMEOUT_S`). A repeat that reaches another worker before the first decision is
   recorded (the recorder's lag, about a poll) is scored again by the same version, so its
   score and verdict are the same; the table keeps the first.
2. **Scored** by the serving champion (`ServingModelWatcher`: verified, and swapped between two
   requests when the alias moves; a request in flight finishes on the version it started
   with). A version that raises or answers a non-probability is refused and the last good one
   serves.
3. **Recorded before the answer.** Each decision is produced to the decisions topic and the
   answer waits for the broker's acknowledgement (`AckedProducer`): a process that dies after
   answering has lost nothing, and one that dies before has answered nothing. The recorder
   (`recorder.DecisionRecorder`, a process of `serve`'s own) writes them to PostgreSQL; no
   database write is on the response path.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from uuid import UUID, uuid4

import structlog
from pydantic import BaseModel

from fraudpipe.adapters.avro import registry_client
from fraudpipe.adapters.avro.decisions import DecisionCodec
from fraudpipe.adapters.kafka.acked import AckedProducer
from fraudpipe.adapters.mlflow.model_watch import ServingModelWatcher
from fraudpipe.adapters.postgres.decisions import LOOKUP_TIMEOUT_S, DecisionLookup
from fraudpipe.config import Settings
from fraudpipe.errors import (
    FraudpipeError,
    InvalidScoreError,
    ModelInputError,
    ModelRegistryError,
    NoServingModelError,
    OverloadedError,
    ServiceUnavailableError,
)
from fraudpipe.model.serving import ServingModel
from fraudpipe.records import DecisionRecord
from fraudpipe.serving.decide import decide
from fraudpipe.serving.metrics import ApiMetrics

log = structlog.get_logger(__name__)

#: Where `serve` tells its workers the decision recorder's process id.
RECORDER_PID_ENV: Final = "FRAUDPIPE_API_RECORDER_PID"
#: Recent decisions a worker answers repeats from without asking PostgreSQL.
CACHE_SIZE: Final = 100_000


class Runtime:
    """The model, the producer and the lookup of one worker."""

    def __init__(self, settings: Settings, metrics: ApiMetrics) -> None:
        """Build the clients; `start` connects them."""
        self.settings = settings
        self.metrics = metrics
        name = f"fraudpipe-api-{os.getpid()}"
        self.watcher = ServingModelWatcher(settings)
        self.codec = DecisionCodec(settings, registry_client(settings))
        self.producer = AckedProducer(settings, name)
        self.lookup = DecisionLookup(settings)
        self.model_ready = False
        self._recent: OrderedDict[bytes, bytes] = OrderedDict()
        """Transaction id → the decision's message value, newest last (`CACHE_SIZE`). Bytes,
        which the garbage collector does not track: full of `DecisionRecord`s (300k objects),
        the cache made a full collection 264 ms instead of 166-184 (see `start`)."""
        self._inflight: dict[UUID, asyncio.Future[tuple[DecisionRecord, bool]]] = {}
        self._pending: list[_Ask] = []
        """The transactions asked for since the decider took its last batch."""
        self._decider: asyncio.Task[None] | None = None
        self._recording: set[asyncio.Task[None]] = set()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="api-model-watch", daemon=True)
        self._kafka_checked = (0.0, False)

    async def start(self) -> None:
        """Load and verify the champion, connect, start the model watch.

        Without a model to serve (none promoted yet, MLflow away) the API still starts, answers
        503 and is not ready; the watcher's thread keeps trying.
        """
        await asyncio.to_thread(self._load_first)
        self.producer.start()
        self._poller.start()
        try:
            await self.lookup.connect()
        except FraudpipeError as exc:  # repeats are then scored again until it is back
            log.warning("PostgreSQL not reachable for repeat checks", error=str(exc))
        # What start-up built (MLflow, scikit-learn, pandas, FastAPI: ~350k objects) lives as
        # long as the process. A full collection walked it in 166-184 ms (one process with the
        # worker's imports, 2 cores, idle), stalling every request in flight: p99 366 ms at
        # 1,000 requests/s (`bench/api.py`). Frozen, as the scorer's is, no collection walks it.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        """Stop the thread, wait for unacknowledged records, close the connection."""
        self._stop.set()
        left = await asyncio.to_thread(self.producer.close)
        if left:
            log.error("decisions not acknowledged at shutdown", count=left)
        await self.lookup.close()

    def _load_first(self) -> None:
        """Load the first model; without one the API runs, not ready, and keeps trying."""
        try:
            model = self.watcher.model()
        except (NoServingModelError, ServiceUnavailableError, ModelRegistryError) as exc:
            log.error("no model to serve yet; not ready, trying again", error=str(exc))
            return
        self.metrics.model_version.set(model.version)
        self.model_ready = True

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.api_model_poll_s):
            if self.model_ready:
                self.watcher.poll()
            else:
                self._load_first()

    def kafka_reachable(self) -> bool:
        """Whether the producer reaches the broker (asked at most every 2 s)."""
        at, ok = self._kafka_checked
        if time.monotonic() - at > 2.0:
            ok = self.producer.connected
            self._kafka_checked = (time.monotonic(), ok)
        return ok

    async def decide(
        self, transactions: Sequence[BaseModel], client: str, request_id: UUID
    ) -> list[tuple[DecisionRecord, bool]]:
        """Each transaction's decision, and whether it is an earlier one returned again.

        The transactions join the next batch (`_decide_pending`), with every other request's
        that arrives meanwhile: one lookup, one model call and one produce for all of them.

        Raises:
            OverloadedError: The worker holds too many undecided transactions to take these
                (none of them was taken).
            NoServingModelError: Every version was refused.
            ServiceUnavailableError: The decisions could not be recorded (Kafka).
            DeliveryRefusedError: The broker refused them for good.
        """
        self._admit(len(transactions))
        answers = [self._ask(t, request_id, client) for t in transactions]
        return list(await asyncio.gather(*answers))

    async def decide_one(self, transaction: BaseModel, client: str) -> tuple[DecisionRecord, bool]:
        """`decide` for one transaction (`POST /v1/score`), without gathering.

        Raises:
            OverloadedError: The worker holds too many undecided transactions.
            NoServingModelError: Every version was refused.
            ServiceUnavailableError: The decision could not be recorded (Kafka).
            DeliveryRefusedError: The broker refused it for good.
        """
        self._admit(1)
        return await self._ask(transaction, uuid4(), client)

    def _admit(self, count: int) -> None:
        """Refuse `count` more transactions if they would pass `api_max_in_flight`.

        What a worker holds stays bounded whatever is sent to it, and a caller refused at once
        can fall back or retry elsewhere rather than wait behind everything already held.
        """
        in_flight = len(self._inflight)
        limit = self.settings.api_max_in_flight
        if in_flight + count > limit:
            raise OverloadedError(count, in_flight, limit)

    def _ask(
        self, transaction: BaseModel, request_id: UUID, client: str
    ) -> Awaitable[tuple[DecisionRecord, bool]]:
        tx: UUID = transaction.transaction_id  # type: ignore[attr-defined]
        if (hit := self._recent.get(tx.bytes)) is not None:
            return _done((self.codec.decode_value(hit), True))
        if (pending := self._inflight.get(tx)) is not None:
            return _again(pending)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[DecisionRecord, bool]] = loop.create_future()
        self._inflight[tx] = future
        self._pending.append(_Ask(transaction, tx, request_id, client, future))
        if self._decider is None or self._decider.done():
            self._decider = loop.create_task(self._decide_pending())
        # Shielded: a caller that goes away cancels its wait, not the decision others share.
        return asyncio.shield(future)

    async def _decide_pending(self) -> None:
        """Take what is pending as a batch, look it up and score it, then the next batch.

        One batch at a time: while a batch waits for its lookup and is scored, the requests that
        arrive join the next, so under load the worker makes a few large batches, not one per
        turn of the loop each paying a lookup, a model call and a produce. `bench/api.py`, one
        sitting (2026-12-06), batch per turn → one batch at a time (with the asyncpg lookup): a
        closed loop of 16 connections, 903 → 999 answers/s on one worker and 783 → 963 on two;
        p50 at 500 requests/s, 11.3 → 8.3 ms and 13.4 → 5.4 ms. A batch's records are then
        produced, and answered once acknowledged, by a task of their own (`_record`): the next
        batch does not wait for the broker.
        """
        while self._pending:
            asks, self._pending = self._pending, []
            try:
                stored = await self._stored([a.tx for a in asks])
                new = [a for a in asks if a.tx not in stored]
                records = self._score(new) if new else []
                keys_values = [(r.transaction_id.bytes, self.codec.encode(r)) for r in records]
            except Exception as exc:  # noqa: BLE001  # each request answers it (503)
                self._fail(asks, exc)
                continue
            task = asyncio.get_running_loop().create_task(
                self._record(asks, stored, records, keys_values)
            )
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)

    async def _record(
        self,
        asks: list[_Ask],
        stored: dict[UUID, DecisionRecord],
        records: list[DecisionRecord],
        keys_values: list[tuple[bytes, bytes]],
    ) -> None:
        """Produce a batch's new decisions, then answer each of its transactions."""
        try:
            await self.producer.send_many(self.codec.topic, keys_values)
        except Exception as exc:  # noqa: BLE001  # each request answers it (503)
            self._fail(asks, exc)
            return
        for key, value in keys_values:
            self._remember(key, value)
        made = {r.transaction_id: r for r in records}
        for a in asks:
            self._inflight.pop(a.tx, None)
            if (record := made.get(a.tx)) is not None:
                _settle(a.future, (record, False))
            else:
                _settle(a.future, (stored[a.tx], True))

    def _fail(self, asks: list[_Ask], exc: Exception) -> None:
        for a in asks:
            self._inflight.pop(a.tx, None)
            _settle(a.future, exc)

    async def _stored(self, ids: list[UUID]) -> dict[UUID, DecisionRecord]:
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                return await self.lookup.find_many(ids)
        except (TimeoutError, FraudpipeError) as exc:
            self.metrics.lookups_failed.inc()
            log.warning("repeat check failed; scoring", error=str(exc) or type(exc).__name__)
            return {}

    def _score(self, asks: Sequence[_Ask]) -> list[DecisionRecord]:
        if not self.model_ready:
            raise NoServingModelError(self.settings.model_name, self.settings.serving_alias)
        model = self.watcher.model()
        now = datetime.now(UTC)
        # In milliseconds, as the decisions topic carries it: the answer to a repeat, read
        # back from PostgreSQL, is then the first answer to the microsecond.
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        transactions = [a.transaction for a in asks]
        lineage = [(a.request_id, a.client) for a in asks]
        while True:
            try:
                return decide(model, transactions, lineage, decided_at=now)
            except (InvalidScoreError, ModelInputError) as exc:
                model = self._refuse(model, str(exc))
            except Exception as exc:  # noqa: BLE001  # a model is untrusted code
                model = self._refuse(model, f"{type(exc).__name__}: {exc}")

    def _refuse(self, model: ServingModel, reason: str) -> ServingModel:
        fallback = self.watcher.refuse(model, reason)
        self.metrics.model_version.set(fallback.version)
        return fallback

    def _remember(self, key: bytes, value: bytes) -> None:
        self._recent[key] = value
        if len(self._recent) > CACHE_SIZE:
            self._recent.popitem(last=False)

    def serving_version(self) -> int | None:
        """The version the next request is scored with."""
        version = self.watcher.next_version
        if version is not None:
            self.metrics.model_version.set(version)
        return version


@dataclass(slots=True)
class _Ask:
    """One transaction waiting for its batch's decision."""

    transaction: BaseModel
    tx: UUID
    request_id: UUID
    client: str
    future: asyncio.Future[tuple[DecisionRecord, bool]]


async def _done(answer: tuple[DecisionRecord, bool]) -> tuple[DecisionRecord, bool]:
    return answer


async def _again(first: asyncio.Future[tuple[DecisionRecord, bool]]) -> tuple[DecisionRecord, bool]:
    """A repeat of a transaction in flight: the first request's decision, as a replay."""
    record, _ = await asyncio.shield(first)
    return record, True


def _settle(
    future: asyncio.Future[tuple[DecisionRecord, bool]],
    outcome: tuple[DecisionRecord, bool] | Exception,
) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
        future.exception()  # retrieved: an ask nobody waits for any more logs nothing
    else:
        future.set_result(outcome)


def recorder_running() -> bool:
    """Whether the decision recorder `serve` started (``FRAUDPIPE_API_RECORDER_PID``) runs."""
    pid = os.environ.get(RECORDER_PID_ENV, "")
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except OSError:
        return False
    return True
