"""A deferrable Airflow sensor that waits until a batch reaches a status (`scored`).

The sensor checks once in its worker slot; if the batch is not there yet it hands the wait to
Airflow's triggerer (`BatchStatusTrigger`, one cheap query every few seconds) and frees the slot.
`dag.test()` runs the trigger inline. Both sides read fraudpipe settings; the trigger is told the
database name so a run against another database (a test's) keeps polling that one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.triggers.base import BaseTrigger, TriggerEvent

from fraudpipe.adapters.postgres.reporting import BatchProgress, app_engine, batch_progress
from fraudpipe.config import Settings, get_settings

_CLASSPATH = "fraudpipe.orchestration.airflow_sensors.BatchStatusTrigger"


def _settings_for(pg_database: str) -> Settings:
    return get_settings().model_copy(update={"pg_database": pg_database})


def _probe(pg_database: str, batch_id: str) -> BatchProgress:
    engine = app_engine(_settings_for(pg_database))
    try:
        return batch_progress(engine, batch_id)
    finally:
        engine.dispose()


class BatchStatusTrigger(BaseTrigger):
    """Fires once the batch has `status`; fires with an error when the batch does not exist."""

    def __init__(self, batch_id: str, status: str, pg_database: str, poll_seconds: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is unannotated
        self.batch_id = batch_id
        self.status = status
        self.pg_database = pg_database
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            _CLASSPATH,
            {
                "batch_id": self.batch_id,
                "status": self.status,
                "pg_database": self.pg_database,
                "poll_seconds": self.poll_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        last_scored = -1
        while True:
            # The probe is a short blocking query: a thread keeps the triggerer's loop free.
            progress = await asyncio.to_thread(_probe, self.pg_database, self.batch_id)
            if progress.status is None or progress.status == self.status:
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    {
                        "batch_id": self.batch_id,
                        "status": progress.status,
                        "rows": progress.rows,
                        "scored": progress.scored,
                    }
                )
                return
            if progress.scored != last_scored:
                last_scored = progress.scored
                self.log.info(
                    "batch %s is %s: %d of %d rows scored",
                    self.batch_id,
                    progress.status,
                    progress.scored,
                    progress.rows,
                )
            await asyncio.sleep(self.poll_seconds)


class BatchStatusSensor(BaseSensorOperator):
    """Wait until batch `batch_id` has `status` (default `scored`), deferring between checks.

    Args:
        batch_id: The batch (templated, so an upstream XCom can supply it).
        status: The status to wait for.
        poll_seconds: Seconds between checks.
        deferrable: Hand the wait to the triggerer (True) or poke in the worker slot.
    """

    template_fields: Sequence[str] = ("batch_id",)
    ui_color = "#d9ead3"

    def __init__(
        self,
        *,
        batch_id: str,
        status: str = "scored",
        poll_seconds: float = 5.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_seconds)
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.status = status
        self.poll_seconds = poll_seconds
        self.deferrable = deferrable

    def poke(self, context: Context) -> bool:
        progress = _probe(get_settings().pg_database, self.batch_id)
        self._check_exists(progress.status)
        self.log.info(
            "batch %s is %s: %d of %d rows scored",
            self.batch_id,
            progress.status,
            progress.scored,
            progress.rows,
        )
        return progress.status == self.status

    def execute(self, context: Context) -> dict[str, Any] | None:
        if not self.deferrable:
            super().execute(context)
            return None
        if self.poke(context):
            return {"batch_id": self.batch_id, "status": self.status}
        self.defer(
            trigger=BatchStatusTrigger(
                self.batch_id, self.status, get_settings().pg_database, self.poll_seconds
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )
        return None  # unreachable: defer() raises

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        self._check_exists(event.get("status"))
        self.log.info("batch %s is %s", self.batch_id, event["status"])
        return event

    def _check_exists(self, status: str | None) -> None:
        if status is None:
            from fraudpipe.errors import BatchNotFoundError

            raise BatchNotFoundError(self.batch_id)
