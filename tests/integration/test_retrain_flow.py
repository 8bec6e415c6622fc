"""The `retrain-weekly` Prefect flow end to end: fresh database → real Prefect run → MLflow.

The flow reads its settings the way a deployment run does (environment → `get_settings()`), so
the test points the environment at a fresh database and a model name of its own, and clears the
settings cache before and after.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
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


def test_the_weekly_flow_trains_as_of_its_cut_and_sets_the_champion(
    flow_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    retrain_weekly = load_flow_entrypoint().retrain_weekly
    monkeypatch.setenv("FRAUDPIPE_LABEL_DELAY_DAYS", "1")
    get_settings.cache_clear()
    # Three days from 2025-09-20; as of 09-23 with labels a day late, the third is too young.
    frame = synthetic_history(days=3, rows_per_day=1500, fraud_rate=0.03, seed=5)
    store_transactions(flow_settings, frame, "synthetic-flow-test", unlabelled_every=25)
    cut = datetime(2025, 9, 23, tzinfo=UTC)

    with prefect_api(flow_settings):
        state = retrain_weekly(cut=cut, return_state=True)
        assert state.is_completed(), state.message
        summary = state.result()
        rerun = retrain_weekly(cut=cut, return_state=True).result()

    assert summary["model_name"] == flow_settings.model_name
    assert (summary["version"], summary["alias"], summary["newly_registered"]) == (
        1,
        "champion",
        True,
    )
    # The holdout is the last day whose labels are mature at the cut: the second.
    assert summary["holdout"]["rows"] == int((frame.index % 25 != 0)[1500:3000].sum())
    assert (summary["label_cut"], summary["events_before"]) == (
        "2025-09-23T00:00:00+00:00",
        "2025-09-22T00:00:00+00:00",
    )
    # Same cut, same rows, same seed: the re-run finds the version it already registered (and
    # the metrics that run logged) without training again.
    assert (rerun["version"], rerun["newly_registered"]) == (1, False)
    assert rerun["holdout"] == pytest.approx(summary["holdout"])
    client = MlflowClient(tracking_uri=flow_settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(flow_settings.model_name, "champion")
    assert champion.version == "1"
    assert champion.tags["label_cut"] == "2025-09-23T00:00:00+00:00"
    params = client.get_run(champion.run_id).data.params
    assert params["label_cut"] == "2025-09-23T00:00:00+00:00"
    assert float(params["label_delay_days"]) == 1.0
    assert params["training_set_digest"] == champion.tags["training_set_digest"]
    assert len(params["training_set_digest"]) == 64
