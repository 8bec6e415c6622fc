"""The Models page's MLflow reads, against versions registered by the real retraining code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import streamlit as st
from dashboard_models import register_two_versions
from streamlit.testing.v1 import AppTest

from fraudpipe.adapters.mlflow import model_history
from fraudpipe.adapters.mlflow.registry import RegisteredVersion, delete_registered_model
from fraudpipe.config import Settings, get_settings
from fraudpipe.errors import ServiceUnavailableError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("dashboard_on_loopback")]

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def registered(stack: Settings) -> Iterator[tuple[Settings, list[RegisteredVersion]]]:
    settings = stack.model_copy(update={"model_name": f"dashboard-test-{uuid.uuid4().hex[:10]}"})
    try:
        yield settings, register_two_versions(settings)
    finally:
        delete_registered_model(settings)


def test_versions_newest_first_with_their_gate_decisions(
    registered: tuple[Settings, list[RegisteredVersion]],
) -> None:
    settings, registrations = registered
    versions = model_history.versions_frame(settings)
    assert versions["version"].tolist() == [2, 1]
    by_version = versions.set_index("version")
    for registration in registrations:
        row = by_version.loc[registration.version]
        assert row["decision"] == registration.alias
        assert row["run_id"] == registration.run_id
        assert row["reason"] == registration.reason
    # Holdout metrics come from the version's tags, as the gate recorded them.
    decision = registrations[1].decision
    assert decision is not None
    assert by_version.loc[2, "holdout_average_precision"] == pytest.approx(
        decision.candidate.average_precision
    )


def test_champion_history_follows_the_promotions(
    registered: tuple[Settings, list[RegisteredVersion]],
) -> None:
    settings, registrations = registered
    versions = model_history.versions_frame(settings)
    history = model_history.champion_history(versions)
    promoted = [r.version for r in registrations if r.alias == "champion"]
    assert history["version"].tolist() == promoted
    assert history["current"].tolist() == [v == promoted[-1] for v in promoted]
    if len(promoted) == 2:
        assert history["champion_until"].iloc[0] == history["champion_from"].iloc[1]
        assert history["replaced_version"].iloc[1] == "1"


def test_logged_curve_plots_and_coefficients(
    registered: tuple[Settings, list[RegisteredVersion]],
) -> None:
    settings, registrations = registered
    plots = model_history.curve_plots(settings, registrations[0].run_id)
    assert set(plots) == {"pr", "roc"}
    assert all(png.startswith(PNG_SIGNATURE) for png in plots.values())

    coefficients = model_history.coefficients(settings, 2)
    assert coefficients is not None
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    pipeline = mlflow.sklearn.load_model(f"models:/{settings.model_name}/2")
    expected = np.asarray(pipeline[-1].coef_).reshape(-1)
    assert coefficients["coefficient"].to_numpy() == pytest.approx(expected)
    assert "amount" in coefficients["feature"].tolist()
    assert "v14" in coefficients["feature"].tolist()

    tradeoff = model_history.alert_tradeoff(settings, registrations[0].run_id)
    assert tradeoff is not None
    assert list(tradeoff.columns) == ["threshold", "alerts_per_day", "recall", "precision"]
    assert tradeoff["recall"].is_monotonic_increasing and tradeoff["recall"].iat[-1] == 1.0


def test_an_unreachable_registry_is_named(stack: Settings) -> None:
    down = stack.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:1"})
    with pytest.raises(ServiceUnavailableError, match="MLflow not reachable"):
        model_history.versions_frame(down)


@pytest.fixture
def models_page(
    monkeypatch: pytest.MonkeyPatch, fresh_db: Settings
) -> Iterator[tuple[AppTest, pytest.MonkeyPatch]]:
    monkeypatch.setenv("FRAUDPIPE_PG_DATABASE", fresh_db.pg_database)
    get_settings.cache_clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=300)
    yield at, monkeypatch
    st.cache_data.clear()
    st.cache_resource.clear()
    get_settings.cache_clear()


def open_models_page(at: AppTest) -> AppTest:
    at.run()
    at.switch_page("views/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_models_page_shows_versions_champion_plots_and_coefficients(
    models_page: tuple[AppTest, pytest.MonkeyPatch],
    registered: tuple[Settings, list[RegisteredVersion]],
) -> None:
    at, monkeypatch = models_page
    settings, registrations = registered
    monkeypatch.setenv("FRAUDPIPE_MODEL_NAME", settings.model_name)
    get_settings.cache_clear()
    open_models_page(at)
    champion = next(r.version for r in reversed(registrations) if r.alias == "champion")
    shown = {m.label: m.value for m in at.metric}
    assert shown["Champion"] == f"v{champion}"
    assert shown["Registered versions"] == "2"
    assert at.selectbox[0].value == champion
    assert len(at.image) == 2  # the run's PR and ROC plots
    # Holdout metrics, the alert trade-off and the coefficients.
    assert len(at.get("plotly_chart")) == 3
    assert any("threshold rule: max F1" in c.value for c in at.caption)
    versions_table = at.dataframe[0].value
    assert versions_table["version"].tolist() == [2, 1]


def test_models_page_with_mlflow_down_warns_and_still_renders(
    models_page: tuple[AppTest, pytest.MonkeyPatch],
) -> None:
    at, monkeypatch = models_page
    monkeypatch.setenv("FRAUDPIPE_MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    get_settings.cache_clear()
    open_models_page(at)
    assert "MLflow not reachable at http://127.0.0.1:1" in at.warning[0].value
    assert "No transactions loaded yet" in " ".join(i.value for i in at.info)
