"""Runs launched through the Prefect API: a run whose worker never started it is replaced, whether
the caller finds it stuck or is already waiting on it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from fraudpipe.config import Settings
from fraudpipe.errors import FlowRunFailed
from fraudpipe.orchestration.deployments import INGEST_DEPLOYMENT, apply_deployments
from fraudpipe.orchestration.prefect_runs import run_deployment_and_wait, run_key, run_tag

pytestmark = pytest.mark.integration


def test_a_run_left_pending_is_crashed_and_a_new_one_runs(stack: Settings, tmp_path: Path) -> None:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import StateType
    from prefect.states import Pending

    apply_deployments(stack)
    logical_key = f"test-abandoned-{uuid.uuid4().hex[:8]}"
    # A source that does not exist: the new run fails at once, with the flow's own error.
    parameters = {"source": str(tmp_path / "no_such_file.csv"), "day": "2025-09-20"}
    with SyncPrefectClient(
        stack.prefect_api_url, auth_string=stack.prefect_auth_string()
    ) as client:
        deployment = client.read_deployment_by_name(INGEST_DEPLOYMENT)
        # What a worker that died while submitting leaves behind: PENDING, with the run's tag.
        stuck = client.create_flow_run_from_deployment(
            deployment.id,
            parameters=parameters,
            tags=[run_tag(run_key(stack, INGEST_DEPLOYMENT, logical_key))],
            state=Pending(),
        )

    seen: list[tuple[str, str]] = []
    with pytest.raises(FlowRunFailed, match="no_such_file") as failed:
        run_deployment_and_wait(
            stack,
            INGEST_DEPLOYMENT,
            parameters,
            logical_key=logical_key,
            timeout=600,
            on_state=lambda name, state: seen.append((name, state)),
            # Young at first, so this call attaches to the stuck run; 60 s on, while it waits,
            # the run counts as abandoned. Not much shorter: the new run is PENDING too until
            # its process has imported the flow, and under `make test`'s load that took over
            # 20 s (at 20 s, each new run was given up in turn for 5 minutes).
            abandoned_after=60.0,
        )

    assert seen[0] == (stuck.name, "Pending"), seen  # attached to it, and waited ...
    assert stuck.name not in str(failed.value)  # ... until a new run replaced it
    with SyncPrefectClient(
        stack.prefect_api_url, auth_string=stack.prefect_auth_string()
    ) as client:
        left = client.read_flow_run(stuck.id)
    assert left.state is not None
    assert left.state.type is StateType.CRASHED
    assert "never started" in (left.state.message or "")
