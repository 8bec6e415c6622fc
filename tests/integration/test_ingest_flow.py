"""The `ingest-day` Prefect flow against the real Prefect server and a fresh database."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter
from prefect_support import prefect_api
from raw_files import raw_frame, write_csv

from fraudpipe.config import Settings, get_settings

pytestmark = pytest.mark.integration


def load_flow_entrypoint() -> ModuleType:
    """`flows/ingest.py` loaded by path, the way the deployment's entrypoint names it."""
    path = Path(__file__).resolve().parents[2] / "flows" / "ingest.py"
    spec = importlib.util.spec_from_file_location("ingest_flow", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def flow_settings(fresh_db: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    # The flow reads settings as a deployment run does (environment → get_settings()).
    monkeypatch.setenv("FRAUDPIPE_PG_DATABASE", fresh_db.pg_database)
    get_settings.cache_clear()
    with prefect_api(fresh_db):
        yield fresh_db
    get_settings.cache_clear()


async def _run_name_and_task_runs(flow_run_id: str) -> tuple[str, list[tuple[str, int]]]:
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
            task_run_filter=TaskRunFilter(),
        )
    return run.name, sorted((t.name, t.run_count) for t in tasks)


def test_flow_ingests_a_file_and_a_rerun_adds_nothing(
    flow_settings: Settings, tmp_path: Path, unique: str
) -> None:
    ingest_day = load_flow_entrypoint().ingest_day
    path = write_csv(raw_frame(500, seconds_apart=300.0), tmp_path / f"flowcards_{unique}.csv")

    state = ingest_day(source=str(path), all_days=True, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["source"] == f"file:flowcards_{unique}"
    assert summary["synthetic"] is False
    assert (summary["rows_read"], summary["loaded"], summary["quarantined"]) == (500, 500, 0)
    assert [b["outcome"] for b in summary["batches"]] == ["loaded", "loaded"]
    name, tasks = asyncio.run(_run_name_and_task_runs(str(state.state_details.flow_run_id)))
    assert name == f"ingest-file-flowcards_{unique}-all-days"
    # A file needs no dataset download; the one ingest task ran once.
    assert [(t.rsplit("-", 1)[0], n) for t, n in tasks] == [("ingest-days", 1)]

    again = ingest_day(source=str(path), day="2025-09-21", return_state=True).result()
    assert [(b["batch_id"], b["outcome"]) for b in again["batches"]] == [
        (f"file:flowcards_{unique}:2025-09-21", "unchanged")
    ]


def test_a_bad_file_fails_the_run_without_retrying(
    flow_settings: Settings, tmp_path: Path, unique: str
) -> None:
    ingest_day = load_flow_entrypoint().ingest_day
    path = write_csv(raw_frame(5).drop(columns="Amount"), tmp_path / f"nocols_{unique}.csv")
    state = ingest_day(source=str(path), day="2025-09-20", return_state=True)
    assert state.is_failed()
    assert "missing Amount" in str(state.result(raise_on_failure=False))
    _, tasks = asyncio.run(_run_name_and_task_runs(str(state.state_details.flow_run_id)))
    assert [(t.rsplit("-", 1)[0], n) for t, n in tasks] == [("ingest-days", 1)]


def test_a_request_without_days_fails_before_any_task(flow_settings: Settings) -> None:
    ingest_day = load_flow_entrypoint().ingest_day
    state = ingest_day(source="ulb", return_state=True)
    assert state.is_failed()
    _, tasks = asyncio.run(_run_name_and_task_runs(str(state.state_details.flow_run_id)))
    assert tasks == []
