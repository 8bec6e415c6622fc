"""A client of Airflow's public REST API (`/api/v2`), logged in as the stack's admin.

Airflow 3 authenticates its REST API with a JWT that `POST /auth/token` hands out for a
SimpleAuthManager login; the client asks for one on first use and again when it is refused.
The health endpoint needs no login.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import httpx

from fraudpipe.config import Settings
from fraudpipe.errors import AirflowApiError

#: fraudpipe's DAGs (`dags/`).
DAILY_DAG: Final = "fraud_daily"
WEEKLY_DAG: Final = "fraud_weekly_retrain"
FRAUDPIPE_DAGS: Final = (DAILY_DAG, WEEKLY_DAG)
#: DAG-run states after which nothing more happens to the run.
FINAL_STATES: Final = frozenset({"success", "failed"})
#: The components `GET /api/v2/monitor/health` reports, by their key there.
COMPONENTS: Final = ("metadatabase", "scheduler", "dag_processor", "triggerer")


@dataclass(frozen=True)
class DagRun:
    """One DAG run as the REST API reports it."""

    dag_id: str
    run_id: str
    state: str
    logical_date: datetime | None
    conf: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DagRun:
        logical = body.get("logical_date")
        return cls(
            dag_id=str(body["dag_id"]),
            run_id=str(body["dag_run_id"]),
            state=str(body["state"]),
            logical_date=datetime.fromisoformat(logical) if logical else None,
            conf=dict(body.get("conf") or {}),
        )


def health(settings: Settings, timeout: float = 2.0) -> dict[str, str | None] | None:
    """Each component's status (`healthy`, `unhealthy`, or None: never ran); None when the
    api-server does not answer."""
    try:
        response = httpx.get(f"{settings.airflow_url}/api/v2/monitor/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    if not response.is_success:
        return None
    body = response.json()
    return {key: (body.get(key) or {}).get("status") for key in COMPONENTS}


def version(settings: Settings) -> str | None:
    """The api-server's Airflow version (no login needed), None when it does not answer."""
    try:
        response = httpx.get(f"{settings.airflow_url}/api/v2/version", timeout=2.0)
    except httpx.HTTPError:
        return None
    return str(response.json()["version"]) if response.is_success else None


class AirflowClient:
    """Airflow's REST API as the stack's admin; use as a context manager."""

    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self._settings = settings
        self._http = httpx.Client(base_url=settings.airflow_url, timeout=timeout)
        self._token: str | None = None

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    # -- DAGs ---------------------------------------------------------------------------------
    def dag_ids(self) -> list[str]:
        """The DAGs the dag-processor has stored."""
        body = self._call("GET", "/api/v2/dags", params={"limit": 1000})
        return [str(d["dag_id"]) for d in body["dags"]]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call(
            "PATCH",
            f"/api/v2/dags/{dag_id}",
            params={"update_mask": "is_paused"},
            json={"is_paused": paused},
        )

    def is_paused(self, dag_id: str) -> bool:
        return bool(self._call("GET", f"/api/v2/dags/{dag_id}")["is_paused"])

    def next_logical_date(self, dag_id: str) -> datetime | None:
        """The logical date of the run the scheduler will create next (None: no schedule)."""
        stamp = self._call("GET", f"/api/v2/dags/{dag_id}").get("next_dagrun_logical_date")
        return datetime.fromisoformat(stamp) if stamp else None

    # -- runs ---------------------------------------------------------------------------------
    def trigger(
        self,
        dag_id: str,
        logical_date: datetime,
        *,
        conf: dict[str, Any] | None = None,
        run_id: str | None = None,
        interval: tuple[datetime, datetime] | None = None,
    ) -> DagRun:
        """Create a run for `logical_date` (timezone-aware), or return the one that exists.

        Idempotent: a run for that logical date already there (Airflow answers 409) is returned
        as it is, whatever its state, so a re-run of the caller never doubles a day.

        Args:
            interval: The run's data interval (start, end). Without it Airflow infers the
                interval of a manual run as the one *ending* at `logical_date`, while a
                scheduled run's interval starts there.
        """
        body: dict[str, Any] = {"logical_date": logical_date.isoformat(), "conf": conf or {}}
        if interval is not None:
            body["data_interval_start"] = interval[0].isoformat()
            body["data_interval_end"] = interval[1].isoformat()
        if run_id is not None:
            body["dag_run_id"] = run_id
        response = self._send("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        if response.status_code == 409:
            existing = self.runs(dag_id, logical_date=logical_date)
            if existing:
                return existing[0]
        return DagRun.from_json(_checked(response, f"trigger {dag_id}"))

    def clear_failed(self, run: DagRun) -> DagRun:
        """Queue a finished run's failed tasks (and those after them) to run again."""
        self._call(
            "POST",
            f"/api/v2/dags/{run.dag_id}/dagRuns/{run.run_id}/clear",
            json={"dry_run": False, "only_failed": True},
        )
        return self.run(run.dag_id, run.run_id)

    def run(self, dag_id: str, run_id: str) -> DagRun:
        return DagRun.from_json(self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))

    def runs(
        self,
        dag_id: str,
        *,
        states: list[str] | None = None,
        logical_date: datetime | None = None,
    ) -> list[DagRun]:
        """Runs of `dag_id` (`~` for every DAG), newest first."""
        params: list[tuple[str, str | int]] = [("order_by", "-run_after"), ("limit", 1000)]
        params += [("state", s) for s in states or []]
        if logical_date is not None:
            stamp = logical_date.isoformat()
            params += [("logical_date_gte", stamp), ("logical_date_lte", stamp)]
        body = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params)
        return [DagRun.from_json(r) for r in body["dag_runs"]]

    def wait(self, run: DagRun, timeout: float, poll: float = 2.0) -> DagRun:
        """Poll `run` until it is finished.

        Raises:
            AirflowApiError: Not finished within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while not run.finished:
            if time.monotonic() > deadline:
                raise AirflowApiError(
                    f"wait for {run.dag_id} run {run.run_id}",
                    f"still {run.state} after {timeout:.0f}s",
                )
            time.sleep(poll)
            run = self.run(run.dag_id, run.run_id)
        return run

    def task_states(self, run: DagRun) -> dict[str, str]:
        body = self._call("GET", f"/api/v2/dags/{run.dag_id}/dagRuns/{run.run_id}/taskInstances")
        return {str(t["task_id"]): str(t["state"]) for t in body["task_instances"]}

    def task_log(self, run: DagRun, task_id: str, try_number: int = 1) -> str:
        """A task try's log, one event per line."""
        body = self._call(
            "GET",
            f"/api/v2/dags/{run.dag_id}/dagRuns/{run.run_id}/taskInstances/{task_id}"
            f"/logs/{try_number}",
            params={"full_content": "true"},
        )
        content = body.get("content") or []
        if isinstance(content, str):
            return content
        return "\n".join(str(e.get("event", "")) for e in content if isinstance(e, dict))

    # -- plumbing -----------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = _checked(self._send(method, path, **kwargs), f"{method} {path}")
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers=self._auth(), **kwargs)
            if response.status_code in (401, 403):  # expired: log in again, once
                self._token = None
                response = self._http.request(method, path, headers=self._auth(), **kwargs)
        except httpx.HTTPError as exc:
            raise AirflowApiError(
                f"{method} {path}",
                f"Airflow not reachable at {self._settings.airflow_url} ({exc}): "
                "run `fraudpipe stack up`",
            ) from exc
        return response

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            s = self._settings
            response = self._http.post(
                "/auth/token",
                json={
                    "username": s.airflow_admin_user,
                    "password": s.airflow_admin_password.get_secret_value(),
                },
            )
            self._token = str(_checked(response, "log in to Airflow")["access_token"])
        return {"Authorization": f"Bearer {self._token}"}


def _checked(response: httpx.Response, what: str) -> dict[str, Any]:
    if not response.is_success:
        raise AirflowApiError(what, f"HTTP {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body
