"""The `retrain-weekly` Prefect flow end to end: fresh database → real Prefect run → MLflow.

The flow reads its settings the way a deployment run does (environment → `get_settings()`), so
the test points the environment at a fresh database and a model name of its own, and clears the
settings cache before and after.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from mlflow import MlflowClient
from model_frames import store_transactions, synthetic_history
from prefect_support import prefect_api

from fraudpipe.adapters.mlflow.registry import delete_registered_model
from fraudpipe.config import Settings, get_settings

pytestmark = pytest.mark.integration


def load_flow_entrypoint() -> ModuleType:
    """`flows/retrain.py` loaded by path, the way the deployment's entrypoint names it."""
    path = Path(__file__).resolve().parents[2] / "flows" / "retrain.py"
    spec = importlib.util.spec_from_file_location("retrain_flow", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def flow_settings(
    fresh_db: Settings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    scoped = fresh_db.model_copy(update={"model_name": f"fraud-detector-flow-{unique}"})
    monkeypatch.setenv("FRAUDPIPE_PG_DATABASE", scoped.pg_database)
    monkeypatch.setenv("FRAUDPIPE_MODEL_NAME", scoped.model_name)
    get_settings.cache_clear()
    yield scoped
    get_settings.cache_clear()
    delete_registered_model(scoped)


def test_the_weekly_flow_trains_from_the_database_and_sets_the_champion(
    flow_settings: Settings,
) -> None:
    retrain_weekly = load_flow_entrypoint().retrain_weekly
    frame = synthetic_history(days=2, rows_per_day=1500, fraud_rate=0.03, seed=5)
    store_transactions(flow_settings, frame, "synthetic-flow-test", unlabelled_every=25)

    with prefect_api(flow_settings):
        state = retrain_weekly(return_state=True)
        assert state.is_completed(), state.message
        summary = state.result()
        rerun = retrain_weekly(return_state=True).result()

    assert summary["model_name"] == flow_settings.model_name
    assert (summary["version"], summary["alias"], summary["newly_registered"]) == (
        1,
        "champion",
        True,
    )
    assert summary["holdout"]["rows"] == int((frame.index % 25 != 0)[1500:].sum())
    # Same data, same seed: the re-run finds the version it already registered (and the metrics
    # that run logged) without training again.
    assert (rerun["version"], rerun["newly_registered"]) == (1, False)
    assert rerun["holdout"] == pytest.approx(summary["holdout"])
    client = MlflowClient(tracking_uri=flow_settings.mlflow_tracking_uri)
    assert client.get_model_version_by_alias(flow_settings.model_name, "champion").version == "1"
