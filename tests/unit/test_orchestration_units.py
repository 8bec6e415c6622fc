"""Orchestration helpers that need no service: run keys and scope, Airflow env, day targets."""

from __future__ import annotations

import json
import shlex
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr

from fraudpipe.adapters.airflow.environment import airflow_env, export_lines
from fraudpipe.config import Settings
from fraudpipe.errors import FlowRunFailed, IngestRequestError
from fraudpipe.orchestration.demo import PipelineTotals, demo_days
from fraudpipe.orchestration.pipeline import daily_target
from fraudpipe.orchestration.prefect_runs import (
    RUN_SCOPE_FIELDS,
    flow_run_url,
    run_key,
    run_scope_env,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    secret = SecretStr("pw with spaces'and quotes")
    # Every setting without a default is a credential.
    required = {name for name, field in Settings.model_fields.items() if field.is_required()}
    return Settings(
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings init option
        stack_dir=tmp_path / "stack",
        **dict.fromkeys(required, secret),
    )


def test_run_scope_env_is_read_back_by_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwarded = {name: f"{value}-scoped" for name, value in run_scope_env(settings).items()}
    assert len(forwarded) == len(RUN_SCOPE_FIELDS)
    for name, value in forwarded.items():
        monkeypatch.setenv(name, value)
    secrets = {
        f: getattr(settings, f) for f, info in Settings.model_fields.items() if info.is_required()
    }
    in_flow_run = Settings(_env_file=None, **secrets)  # type: ignore[call-arg]
    assert run_scope_env(in_flow_run) == forwarded
    # Secrets and endpoints never travel through Prefect.
    assert not any("PASSWORD" in name or "HOST" in name for name in forwarded)


def test_run_key_separates_dates_deployments_and_scopes(settings: Settings) -> None:
    key = run_key(settings, "ingest-day/fraudpipe", "fraud_daily:2025-09-22")
    assert key == run_key(settings, "ingest-day/fraudpipe", "fraud_daily:2025-09-22")
    assert key != run_key(settings, "ingest-day/fraudpipe", "fraud_daily:2025-09-23")
    assert key != run_key(settings, "publish-batch/fraudpipe", "fraud_daily:2025-09-22")
    test_db = settings.model_copy(update={"pg_database": "fraudpipe_test_1"})
    assert key != run_key(test_db, "ingest-day/fraudpipe", "fraud_daily:2025-09-22")


def test_flow_run_url_points_at_the_ui(settings: Settings) -> None:
    # the UI lives next to the API: /api is replaced, whatever host and port it has
    api = settings.model_copy(update={"prefect_api_url": "http://prefect.example:4321/api"})
    assert flow_run_url(api, "abc") == "http://prefect.example:4321/runs/flow-run/abc"


def test_flow_run_failed_message_names_state_and_url() -> None:
    err = FlowRunFailed("ingest-day/fraudpipe", "ingest-ulb-2025-09-20", "Crashed", "boom", "U")
    assert "ended Crashed: boom" in str(err)
    assert str(err).endswith("logs: U")
    assert err.state_name == "Crashed"


def test_airflow_env_points_at_stack_postgres_and_dags(settings: Settings) -> None:
    env = airflow_env(settings)
    assert env["AIRFLOW_HOME"] == str(settings.stack_dir.resolve() / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conn == settings.service_db_url(settings.airflow_database)
    assert conn.startswith("postgresql+psycopg://fraudpipe_services:")
    assert conn.endswith("/airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+asyncpg://")
    app_conn = json.loads(env["AIRFLOW_CONN_FRAUDPIPE_POSTGRES"])
    assert app_conn["login"] == settings.pg_app_user
    assert app_conn["schema"] == settings.pg_database


def test_export_lines_survive_the_shell(settings: Settings) -> None:
    env = airflow_env(settings)
    for line in export_lines(env):
        name, _, value = line.removeprefix("export ").partition("=")
        assert shlex.split(value) == [env[name]]


def test_daily_target_picks_ulb_then_synthetic() -> None:
    ulb = daily_target(date(2025, 9, 21))
    assert ulb.batch_id == "ulb:2025-09-21"
    assert ulb.ingest_parameters == {"source": "ulb", "day": "2025-09-21"}
    synthetic = daily_target(date(2025, 9, 22), synthetic_seed=11)
    assert synthetic.batch_id == "synthetic-s11:2025-09-22"
    assert synthetic.ingest_parameters == {"source": "synthetic", "day": "2025-09-22", "seed": 11}
    from_file = daily_target(date(2025, 9, 22), "/data/cards.parquet")
    assert from_file.batch_id == "file:cards:2025-09-22"
    drifting = daily_target(date(2025, 9, 25), drift_from=date(2025, 9, 24))
    assert drifting.batch_id == "synthetic-s7-drift-2025-09-24:2025-09-25"
    assert drifting.ingest_parameters["drift_from"] == "2025-09-24"
    # The ULB days never drift: the scenario is the generator's.
    assert (
        daily_target(date(2025, 9, 21), drift_from=date(2025, 9, 20)).batch_id == "ulb:2025-09-21"
    )


def test_daily_target_refuses_days_a_source_does_not_hold() -> None:
    with pytest.raises(IngestRequestError, match="ULB dataset holds"):
        daily_target(date(2025, 9, 25), "ulb")
    with pytest.raises(IngestRequestError, match="synthetic days start on 2025-09-22"):
        daily_target(date(2025, 9, 20), "synthetic")


def test_demo_covers_two_ulb_days_and_two_synthetic_weeks() -> None:
    days = demo_days()
    assert days[0] == date(2025, 9, 20)
    assert days[-1] == date(2025, 10, 5)
    sources = [daily_target(d).source for d in days]
    assert sources[:2] == ["ulb", "ulb"]
    assert set(sources[2:]) == {"synthetic-s7"}
    assert len(sources[2:]) == 14


def test_totals_report_only_what_grew() -> None:
    before = PipelineTotals(batches=2, transactions=10, predictions=10, model_versions=1)
    assert PipelineTotals(2, 10, 10, 1).added_since(before) == {}
    after = PipelineTotals(batches=3, transactions=15, predictions=10, model_versions=1)
    assert after.added_since(before) == {"batches": 1, "transactions": 5}
