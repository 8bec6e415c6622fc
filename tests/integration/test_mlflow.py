"""MLflow tracking server: log a run, register a model version, set and read an alias."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from fraudpipe.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def client(stack: Settings) -> MlflowClient:
    mlflow.set_tracking_uri(stack.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=stack.mlflow_tracking_uri)


@pytest.fixture
def names(client: MlflowClient, unique: str) -> Iterator[tuple[str, str]]:
    experiment, model = f"test-exp-{unique}", f"test-model-{unique}"
    yield experiment, model
    for mv in client.search_model_versions(f"name='{model}'"):
        client.delete_model_version(model, mv.version)
    if client.search_registered_models(f"name='{model}'"):
        client.delete_registered_model(model)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        client.delete_experiment(exp.experiment_id)


def test_log_run_register_version_and_alias(client: MlflowClient, names: tuple[str, str]) -> None:
    experiment, model_name = names
    mlflow.set_experiment(experiment)
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("average_precision", 0.75)
        info = mlflow.sklearn.log_model(
            LogisticRegression().fit(x, y),
            name="model",
            registered_model_name=model_name,
            input_example=x[:1],
        )

    stored = client.get_run(run.info.run_id)
    assert stored.data.params["C"] == "1.0"
    assert stored.data.metrics["average_precision"] == pytest.approx(0.75)

    version = info.registered_model_version
    assert version is not None
    client.set_registered_model_alias(model_name, "champion", str(version))
    by_alias = client.get_model_version_by_alias(model_name, "champion")
    assert by_alias.version == str(version)
    assert by_alias.run_id == run.info.run_id

    loaded = mlflow.sklearn.load_model(f"models:/{model_name}@champion")
    assert list(loaded.predict(x)) == [0, 0, 1, 1]
