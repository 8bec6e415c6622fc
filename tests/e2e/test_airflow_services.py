"""Airflow as the stack runs it: four real processes (api-server, scheduler with LocalExecutor,
dag-processor, triggerer) with Airflow's own login, and a `fraud_daily` run triggered through the
REST API that ingests, publishes and scores a day on the stack's pipeline.

Nothing is in-process here: the run's tasks are the scheduler's task processes, each launching a
Prefect flow run on the stack's worker, and the wait for scoring is the triggerer's. The run works
where the scheduler's own runs would: the stack's default database, topics and model (the
scheduler's environment is the stack's `.env`), bootstrapped as `make demo` does.

The day is the one the scheduler would create next. Triggering it before unpausing the DAG means
the scheduler finds that logical date taken and creates no run of its own (Airflow skips a
scheduled run whose logical date exists); the DAG is paused again at the end.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fraudpipe.adapters.airflow import api
from fraudpipe.adapters.airflow.api import DAILY_DAG, FRAUDPIPE_DAGS, AirflowClient, DagRun
from fraudpipe.config import Settings
from fraudpipe.errors import AirflowApiError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

#: A synthetic day is about 140k rows: ingest, publish and scoring take a minute or two here.
RUN_SECONDS = 1200.0


def test_every_component_is_healthy_and_the_api_wants_a_login(stack: Settings) -> None:
    assert api.health(stack) == dict.fromkeys(api.COMPONENTS, "healthy")
    assert httpx.get(f"{stack.airflow_url}/api/v2/dags", timeout=10).status_code == 401
    wrong = httpx.post(
        f"{stack.airflow_url}/auth/token",
        json={"username": stack.airflow_admin_user, "password": "not-the-password"},
        timeout=10,
    )
    assert wrong.status_code == 401
    with AirflowClient(stack) as airflow:
        assert set(FRAUDPIPE_DAGS) <= set(airflow.dag_ids())
        # The test stack keeps them paused (see the `stack` fixture).
        assert all(airflow.is_paused(dag_id) for dag_id in FRAUDPIPE_DAGS)


@dataclass(frozen=True)
class DailyRun:
    run: DagRun
    tasks: dict[str, str]
    ingest_log: str
    scheduled: list[DagRun]
    bootstrap: list[str]


@pytest.fixture(scope="module")
def daily_run(stack: Settings) -> DailyRun:
    """One `fraud_daily` run, triggered through the REST API and run by the real scheduler."""
    from fraudpipe.orchestration.demo import bootstrap, ensure_initial_model
    from fraudpipe.orchestration.scorer_process import ScorerProcess

    said: list[str] = []
    bootstrap(stack, lambda step, detail: said.append(f"{step}: {detail}"))
    ensure_initial_model(stack, lambda step, detail: said.append(f"{step}: {detail}"))

    with AirflowClient(stack) as airflow:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        logical = airflow.next_logical_date(DAILY_DAG) or today - timedelta(days=1)
        run = airflow.trigger(DAILY_DAG, logical)
        scorer = ScorerProcess(stack, name="scorer-e2e-airflow", metrics_port=0)
        with scorer:
            airflow.set_paused(DAILY_DAG, False)
            try:
                run = airflow.wait(run, RUN_SECONDS)
            except AirflowApiError as exc:
                raise AssertionError(_stuck_report(stack, airflow, run, scorer.log_file)) from exc
            finally:
                airflow.set_paused(DAILY_DAG, True)
        tasks = airflow.task_states(run)
        assert run.state == "success", (tasks, _logs(airflow, run, tasks, _FAILED))
        return DailyRun(
            run=run,
            tasks=tasks,
            ingest_log=airflow.task_log(run, "ingest"),
            scheduled=[r for r in airflow.runs(DAILY_DAG) if r.run_id.startswith("scheduled__")],
            bootstrap=said,
        )


def test_fraud_daily_triggered_through_the_rest_api_scores_its_day_once(
    stack: Settings, daily_run: DailyRun
) -> None:
    from fraudpipe.orchestration.pipeline import daily_target

    run = daily_run.run
    assert daily_run.tasks == dict.fromkeys(
        ["ingest", "publish", "wait_scored", "report", "drift"], "success"
    )
    # The Prefect flow run's URL is in the Airflow task's log ...
    assert f"{stack.prefect_api_url.removesuffix('/api')}/runs/flow-run/" in daily_run.ingest_log
    # ... and the Airflow run is on the Prefect runs: ingest and publish, both completed.
    assert sorted(_prefect_runs_of(stack, run)) == ["Completed", "Completed"]
    # The scheduler made no run of its own for the day the test took.
    assert all(r.logical_date != run.logical_date for r in daily_run.scheduled)

    assert run.logical_date is not None
    batch_id = daily_target(run.logical_date.date()).batch_id
    rows, predictions, distinct, status = _counts(stack, batch_id)
    assert rows > 100_000, daily_run.bootstrap  # a whole synthetic day
    assert (predictions, distinct, status) == (rows, rows, "scored")


def test_the_airflow_ui_logs_in_and_shows_the_successful_run(
    stack: Settings, daily_run: DailyRun, tmp_path: Path
) -> None:
    from headless_chromium import HeadlessChromium, chromium_binary

    if chromium_binary() is None:
        pytest.skip("needs Debian's chromium: run `bash infra/local/bootstrap.sh`")
    with HeadlessChromium(tmp_path / "profile", tmp_path / "chromium.log") as browser:

        def page(expression: str) -> object:
            result = browser.call("Runtime.evaluate", expression=expression, returnByValue=True)
            return result["result"].get("value")

        def until(expression: str, what: str, seconds: float = 60) -> None:
            deadline = time.monotonic() + seconds
            while not page(expression):
                assert time.monotonic() < deadline, f"{what}: {page('document.body.innerText')}"
                time.sleep(0.5)

        browser.call("Page.navigate", url=f"{stack.airflow_url}/dags/{DAILY_DAG}/runs")
        until("!!document.querySelector('input[name=password]')", "the login form")
        assert "/auth/login" in str(page("document.location.href"))
        for field, text in (
            ("username", stack.airflow_admin_user),
            ("password", stack.airflow_admin_password.get_secret_value()),
        ):
            page(f"document.querySelector('input[name={field}]').focus()")
            browser.call("Input.insertText", text=text)  # keystrokes: the form sees real edits
        until("!document.querySelector('button[type=submit]').disabled", "the enabled button")
        page("document.querySelector('button[type=submit]').click()")
        until("!document.location.href.includes('/auth/login')", "leaving the login page")
        browser.call("Page.navigate", url=f"{stack.airflow_url}/dags/{DAILY_DAG}/runs")
        run_id = json.dumps(daily_run.run.run_id)
        until(f"document.body.innerText.includes({run_id})", "the run on the DAG's runs page")
        row = str(
            page(
                "[...document.querySelectorAll('tr')].map(r => r.innerText)"
                f".find(t => t.includes({run_id})) || ''"
            )
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = browser.call("Page.captureScreenshot", format="png")
        (SCREENSHOTS / "airflow_fraud_daily_runs.png").write_bytes(base64.b64decode(shot["data"]))
    assert "Success" in row, row


def _counts(settings: Settings, batch_id: str) -> tuple[int, int, int, str]:
    """Rows of the batch, its predictions, distinct transactions predicted, its status."""
    from fraudpipe.adapters.postgres.connect import connect

    with connect(settings) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM transactions WHERE batch_id = %(b)s),"
            " (SELECT count(*) FROM predictions WHERE batch_id = %(b)s),"
            " (SELECT count(DISTINCT transaction_id) FROM predictions WHERE batch_id = %(b)s),"
            " (SELECT status FROM batches WHERE batch_id = %(b)s)",
            {"b": batch_id},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), str(row[3])


def _prefect_runs_of(settings: Settings, run: DagRun) -> list[str]:
    """State names of the Prefect flow runs tagged with this Airflow run."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with SyncPrefectClient(
        settings.prefect_api_url, auth_string=settings.prefect_auth_string()
    ) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"airflow-run:{run.run_id}"])
            )
        )
    return [str(r.state.name) if r.state else "NONE" for r in runs]


def _stuck_report(settings: Settings, airflow: AirflowClient, run: DagRun, scorer_log: Path) -> str:
    """Where an unfinished run stands: its tasks and their logs, its Prefect runs, its batch's
    counts and the scorer's log, so a run that hangs in CI says where."""
    from fraudpipe.orchestration.pipeline import daily_target

    run = airflow.run(run.dag_id, run.run_id)
    tasks = airflow.task_states(run)
    parts = [
        f"run {run.run_id}: {run.state}; tasks {tasks}",
        _logs(airflow, run, tasks, _STARTED),
        f"prefect runs: {_prefect_runs_of(settings, run)}",
    ]
    if run.logical_date is not None:
        batch_id = daily_target(run.logical_date.date()).batch_id
        counts = _counts(settings, batch_id)
        parts.append(f"batch {batch_id} (rows, predictions, distinct, status): {counts}")
    tail = scorer_log.read_text(errors="replace")[-4000:] if scorer_log.exists() else "(none)"
    parts.append(f"--- scorer log\n{tail}")
    return "\n".join(parts)


#: Task states whose try has a log worth reading when a run failed, or when it hangs (a task
#: not yet started has none).
_FAILED = frozenset({"failed", "up_for_retry"})
_STARTED = _FAILED | {"running", "deferred", "up_for_reschedule"}


def _logs(
    airflow: AirflowClient, run: DagRun, tasks: dict[str, str], states: frozenset[str]
) -> str:
    """The last lines of the log of each task in one of `states`."""
    return "\n".join(
        f"--- {task} ({state})\n{airflow.task_log(run, task)[-3000:]}"
        for task, state in tasks.items()
        if state in states
    )
