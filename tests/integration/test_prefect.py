"""Prefect server: a flow runs against it and its final state is read back from the API."""

from __future__ import annotations

import asyncio

import pytest
from prefect import flow, get_client, task
from prefect.client.schemas.objects import StateType
from prefect_support import prefect_api

from fraudpipe.config import Settings

pytestmark = pytest.mark.integration


@task
def double(x: int) -> int:
    return 2 * x


@flow(name="fraudpipe-smoke")
def smoke_flow(x: int) -> int:
    return double(x) + 1


@flow(name="fraudpipe-smoke-failing")
def failing_flow() -> None:
    raise RuntimeError("deliberate failure")


async def _read_state_type(flow_run_id: str) -> StateType | None:
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
    return run.state.type if run.state else None


def test_flow_run_state_is_recorded_by_server(stack: Settings) -> None:
    with prefect_api(stack):
        state = smoke_flow(20, return_state=True)
        assert state.result() == 41
        assert (
            asyncio.run(_read_state_type(str(state.state_details.flow_run_id)))
            == StateType.COMPLETED
        )

        failed = failing_flow(return_state=True)
        assert failed.is_failed()
        flow_run_id = str(failed.state_details.flow_run_id)
        assert asyncio.run(_read_state_type(flow_run_id)) == StateType.FAILED
