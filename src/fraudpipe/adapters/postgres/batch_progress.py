"""Move a batch to `scored` once every one of its transactions has a prediction.

"Has a prediction" means one by any model version: a champion that moves half-way through a
batch leaves its first part scored by the old version, and a scorer restarted after the move
only ever serves the new one; insisting on a version would keep the batch waiting forever.
The check is an anti-join over the batch's transactions; it runs for the batches a scorer
touched, at most every few seconds per batch (and when the topic goes idle), not per
micro-batch, and off the consume loop (`touched` is all the loop calls). Several scorers may
run it for the same batch: the status move is guarded, so only one moves it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Final

import psycopg
import structlog

from fraudpipe.adapters.postgres.batches import BatchRepository, BatchStatus
from fraudpipe.adapters.postgres.connect import Connection, connect, set_for_transaction
from fraudpipe.config import Settings
from fraudpipe.errors import BatchStatusError, ServiceUnavailableError

log = structlog.get_logger(__name__)

# From the batch's last transaction backwards (ids sort by source row): a batch is published
# and scored roughly in row order, so while it is in progress an unscored transaction sits at
# the end and is found at once. Searched from the front, every check walked all the scored
# ones first: 110–130 ms of server CPU for 140,000 scored rows, every few seconds, competing
# with the micro-batches' writes.
#
# Each transaction is looked up in `predictions`' primary key, one probe per row, whatever the
# statistics say: the probe is a scalar subquery (never turned into a join) and the check's
# transaction has sequential scans off (`_INDEX_PROBES_ONLY`). Written as NOT EXISTS and
# planned while `predictions` looked empty (a new deployment, or statistics taken before a
# batch), the anti-join compared every transaction with every prediction: 0.9 s with 5,000
# scored rows in a test, and in the demo a check ran for 7 minutes at a full core while the
# scorer's consume loop waited for it past Kafka's poll interval and left its group.
LAST_UNSCORED: Final = """
SELECT t.transaction_id FROM transactions t
WHERE t.batch_id = %(batch_id)s
  AND (SELECT true FROM predictions p WHERE p.transaction_id = t.transaction_id LIMIT 1) IS NULL
ORDER BY t.transaction_id DESC
LIMIT 1
"""
_INDEX_PROBES_ONLY: Final = {"enable_seqscan": "off"}


class BatchProgress:
    """Tracks the batches a scorer has written predictions for, and closes finished ones."""

    def __init__(
        self,
        settings: Settings,
        every_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start with no batch pending.

        Args:
            settings: Database to check.
            every_seconds: Minimum time between two checks of the same batch.
            clock: Monotonic seconds (injectable for tests).
        """
        self._settings = settings
        self._every = every_seconds
        self._clock = clock
        self._pending: dict[str, float] = {}  # batch id -> when it may next be checked
        self._state = threading.Lock()  # short: guards the two fields above
        self._checking = threading.Lock()  # one check at a time (loop and housekeeping thread)

    @property
    def pending(self) -> frozenset[str]:
        """Batches not yet seen complete."""
        with self._state:
            return frozenset(self._pending)

    def touched(self, batch_ids: Iterable[str]) -> None:
        """Note that predictions were committed for these batches."""
        due = self._clock() + self._every
        with self._state:
            for batch_id in batch_ids:
                self._pending.setdefault(batch_id, due)

    def close_finished(self, *, force: bool = False) -> list[str]:
        """Mark `scored` each due pending batch that has no transaction left without prediction.

        Args:
            force: Check every pending batch now (on idle and at shutdown).

        Returns:
            The batches this call moved to `scored`.

        Raises:
            ServiceUnavailableError: PostgreSQL cannot be reached (nothing is lost: the batches
                stay pending and are checked again).
        """
        with self._checking:
            now = self._clock()
            with self._state:
                due = [b for b, at in self._pending.items() if force or at <= now]
                for batch_id in due:
                    self._pending[batch_id] = now + self._every
            if not due:
                return []
            finished, moved = self._check(due)
            with self._state:
                for batch_id in finished:
                    self._pending.pop(batch_id, None)
        for batch_id in moved:
            log.info("batch scored", batch_id=batch_id)
        return moved

    def _check(self, due: list[str]) -> tuple[list[str], list[str]]:
        """(batches done with, batches this call moved to `scored`) among `due`."""
        finished: list[str] = []
        moved: list[str] = []
        try:
            with connect(self._settings, "app") as conn:
                repo = BatchRepository(conn)
                for batch_id in due:
                    if has_unscored(conn, batch_id):
                        continue  # transactions still lack predictions
                    current = repo.get(batch_id)
                    if current is None or current.status is BatchStatus.SCORED:
                        # No such batch (ids come from messages), or another scorer moved it.
                        finished.append(batch_id)
                        continue
                    try:
                        if repo.mark_scored(batch_id):
                            moved.append(batch_id)
                    except BatchStatusError:
                        # Still `loaded`: scoring overtook the publisher's final status update.
                        continue
                    conn.commit()
                    finished.append(batch_id)
        except psycopg.OperationalError as exc:
            raise ServiceUnavailableError(
                "PostgreSQL", self._settings.pg_host, f"batch status check ({exc})"
            ) from exc
        return finished, moved


def has_unscored(conn: Connection, batch_id: str) -> bool:
    """Whether a transaction of the batch lacks a prediction (by any model version).

    Runs in the caller's transaction (not autocommit): its planner setting lasts until that
    transaction ends.
    """
    set_for_transaction(conn, _INDEX_PROBES_ONLY)
    return conn.execute(LAST_UNSCORED, {"batch_id": batch_id}).fetchone() is not None
