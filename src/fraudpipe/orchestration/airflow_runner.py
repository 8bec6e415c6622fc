"""Run a DAG of `dags/` for one logical date in this process (`dag.test()`), and say how it went.

Only the integration tests use it (`tests/integration/test_orchestration.py`), where it is the
better tool: each test points its DAG runs at a database, topics and model of its own through
this process's environment, which the stack's scheduler, one environment for every run, cannot
take; and a failing task's traceback surfaces in the test. The tasks run here, one after
another, against the real metadata database, Prefect and the stack. `make demo` and
`tests/e2e/test_airflow_services.py` trigger runs on the real scheduler through Airflow's REST
API instead. `apply_airflow_env` must have run before anything imports `airflow`.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fraudpipe.errors import ConfigurationError
from fraudpipe.project import project_root

if TYPE_CHECKING:
    from airflow.sdk import DAG

#: Seconds to wait for the in-process Execution API to finish starting (see below).
_API_STARTUP_SECONDS = 60.0
#: The one in-process Execution API every task of this process uses (see below).
_SHARED_API: list[Any] = []


@dataclass(frozen=True)
class DagRunOutcome:
    """How one DAG run ended: its state and every task's final state."""

    dag_id: str
    run_id: str
    logical_date: datetime
    state: str
    task_states: dict[str, str]
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(t for t, s in self.task_states.items() if s == "failed")


def load_dag(dag_id: str) -> DAG:
    """Parse `dags/` and return one DAG.

    Raises:
        ConfigurationError: the DAG folder has import errors, or no DAG `dag_id`.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project_root() / "dags"), include_examples=False)
    if bag.import_errors:
        details = "; ".join(f"{path}: {err}" for path, err in bag.import_errors.items())
        raise ConfigurationError(f"dags/ has import errors: {details}")
    dag: DAG | None = bag.get_dag(dag_id)
    if dag is None:
        raise ConfigurationError(f"no DAG '{dag_id}' in {project_root() / 'dags'}")
    return dag


def run_dag(
    dag: DAG,
    logical_date: datetime,
    *,
    conf: dict[str, Any] | None = None,
    retries: int | None = None,
) -> DagRunOutcome:
    """Run `dag` for `logical_date` with `dag.test()` and collect the outcome.

    Args:
        dag: A DAG from `load_dag`.
        logical_date: Timezone-aware logical date.
        conf: DAG-run conf (overrides `params`).
        retries: Override every task's retries (a test that expects a failure uses 0 rather
            than wait out the retry delays).

    Returns:
        The run's state and task states; a failed run is returned, not raised.
    """
    _keep_in_process_api_alive()
    # While a task waits out its retry delay, dag.test() warns "No tasks to run" every second.
    logging.getLogger("airflow.sdk.definitions.dag").setLevel(logging.ERROR)
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    began = time.monotonic()
    # Each task installs Airflow's own SIGTERM handler (which only calls `on_kill`) and never
    # puts the previous one back: restore the caller's, or SIGTERM could no longer stop it.
    caller_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        dag_run = dag.test(logical_date=logical_date, run_conf=conf)
    finally:
        signal.signal(signal.SIGTERM, caller_sigterm)
    return DagRunOutcome(
        dag_id=dag.dag_id,
        run_id=str(dag_run.run_id),
        logical_date=logical_date,
        state=str(getattr(dag_run.state, "value", dag_run.state)),
        task_states={
            ti.task_id: str(getattr(ti.state, "value", ti.state))
            for ti in dag_run.get_task_instances()
        },
        seconds=time.monotonic() - began,
    )


def succeeded_before(dag_id: str, logical_date: datetime) -> bool:
    """True when the metadata database holds a successful run of `dag_id` for `logical_date`."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState

    return bool(DagRun.find(dag_id=dag_id, logical_date=logical_date, state=DagRunState.SUCCESS))


def _keep_in_process_api_alive() -> None:
    """Give every `dag.test()` task one started, long-lived in-process Execution API.

    Airflow 3.2.2 builds a new in-process Execution API for each task, schedules its startup
    (lifespan) on a background loop without awaiting it (apache/airflow#65945), and keeps no
    reference to it once it has the HTTP transport. When the object is collected the lifespan
    exits, svcs drops its registry from the app state, and the task's first request fails with
    "'State' object has no attribute 'svcs_registry'". Here the first API is started, awaited
    and kept for the life of the process, and handed to every later task too, which also
    saves building the versioned app (seconds on a busy machine) per task. Tasks run one at a
    time in `dag.test()`, and the API itself keeps no per-task state.
    """
    from airflow.sdk.execution_time import supervisor

    original = supervisor.in_process_api_server
    if getattr(original, "_fraudpipe_shared", False):
        return

    def shared_api_server() -> Any:
        if _SHARED_API:
            return _SHARED_API[0]
        api = original()  # type: ignore[no-untyped-call]
        api.transport  # noqa: B018  # first access schedules the lifespan
        deadline = time.monotonic() + _API_STARTUP_SECONDS
        while getattr(api.app.state, "svcs_registry", None) is None:
            if time.monotonic() > deadline:
                raise ConfigurationError(
                    "Airflow's in-process Execution API did not start within "
                    f"{_API_STARTUP_SECONDS:.0f}s: check `fraudpipe airflow env` and the "
                    "metadata database (`fraudpipe airflow migrate`)"
                )
            time.sleep(0.01)
        _SHARED_API.append(api)
        return api

    shared_api_server._fraudpipe_shared = True  # type: ignore[attr-defined]
    supervisor.in_process_api_server = shared_api_server
