"""Launch a Prefect deployment run through the API and wait for its terminal state.

This is what each Airflow task does: one flow run per (deployment, logical date, run scope),
polled until it completes, and a `FlowRunFailed` carrying the Prefect state and the run's UI
address when it fails, crashes or is cancelled.

Idempotency: runs are tagged with a key built from the deployment, the logical date and the run
scope. A caller that finds an active run with its key attaches to it instead of starting another
(an Airflow retry after its worker died, two triggers of the same date). When every earlier run
with the key is finished, a new one starts (created under a Prefect `idempotency_key` numbered
after the earlier runs, so two callers racing there still get one run): re-running a DAG run
runs the flow again, and the flow itself adds nothing the second time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from fraudpipe.config import Settings
from fraudpipe.errors import (
    DeploymentNotFoundError,
    FlowRunFailed,
    FlowRunTimeoutError,
    ServiceUnavailableError,
)

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

log = structlog.get_logger(__name__)

#: Settings that say *which* data a run works on (database, topics, model). They follow the
#: caller into the flow run, so a run started against a test database stays there; endpoints
#: and secrets come from the worker's own environment and never travel through Prefect.
RUN_SCOPE_FIELDS: tuple[str, ...] = (
    "pg_database",
    "topic_transactions",
    "topic_predictions",
    "topic_alerts",
    "topic_dlq",
    "consumer_group",
    "model_name",
    "serving_alias",
)

#: States a run that succeeded ends in; every other final state is a failure.
_SUCCESS = "COMPLETED"

#: A run still PENDING this long after it entered that state was never started: its worker
#: died while submitting it. Prefect leaves such a run PENDING for good, and the caller waiting
#: on it, like every later trigger with its key, would wait out its timeout (seen: a run left
#: "Submitting" overnight held a `make demo` day). Submitting takes seconds (a minute for the
#: flow's imports on a loaded 2-core machine); past this the run is marked Crashed and a new
#: one starts, whether the caller finds it so or sees it happen while it waits.
ABANDONED_PENDING_S = 600.0


@dataclass(frozen=True)
class FlowRunResult:
    """How a flow run ended, and whether this call started it or attached to a running one."""

    deployment: str
    flow_run_id: str
    flow_run_name: str
    state_type: str
    state_name: str
    url: str
    started_here: bool
    wait_seconds: float


def prefect_ui_url(settings: Settings) -> str:
    """The Prefect UI root, derived from the API URL (`.../api` → `...`)."""
    return settings.prefect_api_url.rstrip("/").removesuffix("/api")


def flow_run_url(settings: Settings, flow_run_id: str) -> str:
    """Where a person looks at one flow run and its logs."""
    return f"{prefect_ui_url(settings)}/runs/flow-run/{flow_run_id}"


def run_scope_env(settings: Settings) -> dict[str, str]:
    """Environment overrides that point a flow run at the caller's database, topics and model."""
    return {
        f"FRAUDPIPE_{field.upper()}": str(getattr(settings, field)) for field in RUN_SCOPE_FIELDS
    }


def run_key(settings: Settings, deployment_name: str, logical_key: str) -> str:
    """The idempotency key of runs of `deployment_name` for one logical date in one run scope."""
    scope = "|".join(f"{k}={v}" for k, v in sorted(run_scope_env(settings).items()))
    digest = hashlib.sha256(f"{deployment_name}|{logical_key}|{scope}".encode()).hexdigest()
    return f"{deployment_name}|{logical_key}|{digest[:12]}"


def run_tag(key: str) -> str:
    """The Prefect tag that marks every run made under the idempotency key `key`."""
    return "fraudpipe-key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def run_deployment_and_wait(
    settings: Settings,
    deployment_name: str,
    parameters: Mapping[str, Any],
    *,
    logical_key: str,
    origin: Sequence[str] = (),
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_state: Callable[[str, str], None] | None = None,
    abandoned_after: float = ABANDONED_PENDING_S,
) -> FlowRunResult:
    """Start (or attach to) a run of a deployment and wait until it is final.

    Args:
        settings: Where Prefect is, and the run scope handed to the flow run's environment.
        deployment_name: `<flow name>/<deployment name>`, as in `prefect.yaml`.
        parameters: Flow parameters for a new run (merged with the deployment's defaults).
        logical_key: What makes two calls "the same run", e.g. the Airflow logical date.
        origin: Tags naming who asked (the Airflow DAG, run and task; see
            `pipeline.airflow_origin`), shown on the Prefect run.
        timeout: Seconds to wait for a final state.
        poll: Seconds between state reads.
        on_state: Called with (flow run name, state name) whenever the state changes.
        abandoned_after: Seconds after which an earlier run still PENDING counts as
            abandoned (marked Crashed, not attached to).

    Returns:
        The completed run.

    Raises:
        DeploymentNotFoundError: the deployment does not exist (apply `prefect.yaml`).
        FlowRunFailed: the run ended failed, crashed or cancelled.
        FlowRunTimeoutError: no final state within `timeout` (the run is left alone).
        ServiceUnavailableError: the Prefect API is not reachable.
    """
    from prefect.client.orchestration import SyncPrefectClient

    key = run_key(settings, deployment_name, logical_key)
    tag = run_tag(key)
    began = time.monotonic()
    deadline = began + timeout
    try:
        with SyncPrefectClient(
            settings.prefect_api_url, auth_string=settings.prefect_auth_string()
        ) as client:
            while True:
                run, started_here = _attach_or_create(
                    client,
                    settings,
                    deployment_name,
                    dict(parameters),
                    key,
                    [tag, *origin],
                    abandoned_after,
                )
                url = flow_run_url(settings, str(run.id))
                log.info(
                    "flow run started" if started_here else "attached to running flow run",
                    deployment=deployment_name,
                    flow_run=run.name,
                    url=url,
                )
                left = deadline - time.monotonic()
                run = _wait_final(
                    client, run, deployment_name, url, left, poll, on_state, abandoned_after
                )
                if run.state is not None and run.state.is_final():
                    break
                # Abandoned while we waited: the next round marks it Crashed and starts anew.
    except httpx.TransportError as exc:
        raise ServiceUnavailableError("Prefect API", settings.prefect_api_url) from exc

    state = run.state
    assert state is not None  # _wait_final only returns runs with a final state
    result = FlowRunResult(
        deployment=deployment_name,
        flow_run_id=str(run.id),
        flow_run_name=run.name,
        state_type=state.type.value,
        state_name=state.name or state.type.value,
        url=url,
        started_here=started_here,
        wait_seconds=time.monotonic() - began,
    )
    if result.state_type != _SUCCESS:
        raise FlowRunFailed(deployment_name, run.name, result.state_name, state.message or "", url)
    log.info("flow run completed", deployment=deployment_name, flow_run=run.name, url=url)
    return result


def _attach_or_create(
    client: SyncPrefectClient,
    settings: Settings,
    deployment_name: str,
    parameters: dict[str, Any],
    key: str,
    tags: list[str],
    abandoned_after: float,
) -> tuple[FlowRun, bool]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    try:
        deployment = client.read_deployment_by_name(deployment_name)
    except ObjectNotFound as exc:
        raise DeploymentNotFoundError(deployment_name, settings.prefect_api_url) from exc

    earlier = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
            tags=FlowRunFilterTags(all_=tags[:1]),
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
    )
    for run in earlier:
        if run.state is None or not run.state.is_final():
            if not _abandoned(run, abandoned_after):
                return run, False
            client.set_flow_run_state(
                run.id,
                Crashed(message=f"still PENDING after {abandoned_after:.0f} s: never started"),
                force=True,
            )
            log.warning("abandoned flow run marked crashed", flow_run=run.name, key=key)
    run = client.create_flow_run_from_deployment(
        deployment.id,
        parameters=parameters,
        tags=tags,
        # Numbered after the finished runs: two callers racing here both ask for the same key,
        # and Prefect hands both the one run.
        idempotency_key=f"{key}#{len(earlier)}",
        job_variables={"env": run_scope_env(settings)},
    )
    # When another caller won that race Prefect returns its run; both then report it as
    # started here, which only affects a log line.
    return run, True


def _abandoned(run: FlowRun, after: float) -> bool:
    from prefect.client.schemas.objects import StateType

    state = run.state
    if state is None or state.type is not StateType.PENDING:
        return False
    return (datetime.now(UTC) - state.timestamp).total_seconds() > after


def _wait_final(
    client: SyncPrefectClient,
    run: FlowRun,
    deployment_name: str,
    url: str,
    timeout: float,
    poll: float,
    on_state: Callable[[str, str], None] | None,
    abandoned_after: float,
) -> FlowRun:
    """The run once final, or once abandoned (still PENDING past `abandoned_after`): a worker
    that died while submitting the run this call started or attached to leaves it PENDING."""
    deadline = time.monotonic() + timeout
    last_state = ""
    while True:
        state = run.state
        state_name = (state.name or state.type.value) if state else "PENDING"
        if state_name != last_state:
            last_state = state_name
            log.info("flow run state", flow_run=run.name, state=state_name)
            if on_state:
                on_state(run.name, state_name)
        if state is not None and state.is_final():
            return run
        if _abandoned(run, abandoned_after):
            log.warning("flow run abandoned while waited on", flow_run=run.name)
            return run
        if time.monotonic() >= deadline:
            raise FlowRunTimeoutError(deployment_name, run.name, state_name, timeout, url)
        time.sleep(poll)
        run = client.read_flow_run(run.id)
