"""A version that fails verification never serves: the scorer keeps the last good one.

Against the real MLflow: a champion trained and signed by the real promotion gate, then
versions that are wrong in one way each, signed the way the gate signs (so the digest is not
what refuses them): the champion's own pipeline saved with cloudpickle, a pipeline that raises
on its reference frame, one that answers a constant, plus an unsigned version and a signed
version whose files were replaced after signing. Each time the alias moves to one of them, the
watcher keeps serving the good version and reports the refusal once; a scorer that starts while
the alias points at a bad version serves the newest good one, records the refusal for the
dashboard, and its predictions carry the good version.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import Model
from scoring_support import (
    champion_model,
    ingest_ulb_day,
    own_settings,
    predictions,
    scoring_topics,
    set_champion,
    synthetic_labelled_days,
    write_ulb_day,
)
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from fraudpipe.adapters.mlflow.model_watch import ServingModelWatcher
from fraudpipe.adapters.mlflow.registry import load_model_version
from fraudpipe.adapters.mlflow.run_logging import SKOPS_TRUSTED_TYPES
from fraudpipe.adapters.mlflow.verified_load import (
    ARTIFACT_DIGEST_TAG,
    download_version,
    record_artifact_digest,
)
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.columns import LABEL_COLUMN, MODEL_INPUT_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.errors import ModelTrustError
from fraudpipe.publish import publish_batch
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import ScoringService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _metadata_of(settings: Settings, version: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        local = download_version(settings, version, Path(tmp))
        return dict(Model.load(str(local / "MLmodel")).metadata or {})


def register_variant(
    settings: Settings, pipeline: Any, *, like: int, serialization: str = "skops", sign: bool = True
) -> int:
    """A version that is `like` in every way but its model, signed as the gate signs."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(settings.model_name)
    assert experiment is not None
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            serialization_format=serialization,
            skops_trusted_types=SKOPS_TRUSTED_TYPES if serialization == "skops" else None,
            metadata=_metadata_of(settings, like),
            pip_requirements=["scikit-learn"],
        )
    version = int(mlflow.register_model(info.model_uri, settings.model_name).version)
    if sign:
        record_artifact_digest(client, settings, version)
    return version


def _history() -> tuple[pd.DataFrame, pd.Series[int]]:
    frame = synthetic_labelled_days(seed=5, days=1, rows_per_day=400)
    return frame[MODEL_INPUT_COLUMNS], frame[LABEL_COLUMN]


def raising_pipeline() -> Pipeline:
    """Fitted on a column the scorer never sends: it raises on every real input."""
    x, y = _history()
    pipeline = Pipeline(
        [("pick", ColumnTransformer([("x", "passthrough", ["not_a_feature"])])),
         ("clf", LogisticRegression())]
    )  # fmt: skip
    return pipeline.fit(x.assign(not_a_feature=np.arange(len(x), dtype=float)), y)


def constant_pipeline() -> Pipeline:
    x, y = _history()
    return Pipeline([("clf", DummyClassifier(strategy="prior"))]).fit(x, y)


@pytest.fixture
def models(fresh_db: Settings, unique: str) -> Iterator[Settings]:
    settings = own_settings(fresh_db, unique)
    with champion_model(settings, seed=1):
        yield settings


def test_each_bad_version_is_refused_and_the_good_one_keeps_serving(models: Settings) -> None:
    good = load_model_version(models, 1)
    cloudpickled = register_variant(models, good.pipeline, like=1, serialization="cloudpickle")
    raising = register_variant(models, raising_pipeline(), like=1)
    constant = register_variant(models, constant_pipeline(), like=1)
    unsigned = register_variant(models, good.pipeline, like=1, sign=False)
    tampered = register_variant(models, good.pipeline, like=1)
    MlflowClient(tracking_uri=models.mlflow_tracking_uri).set_model_version_tag(
        models.model_name, str(tampered), ARTIFACT_DIGEST_TAG, "0" * 64
    )
    refusals: list[tuple[int, str]] = []
    watcher = ServingModelWatcher(models, on_refusal=lambda v, r: refusals.append((v, r)))
    assert watcher.model().version == 1

    expected = {
        cloudpickled: "saved as cloudpickle",
        raising: "raises on its reference frame",
        constant: "gives every reference row the same score",
        unsigned: "no artifact digest was recorded",
        tampered: "do not match the digest",
    }
    for version in expected:
        set_champion(models, version)
        watcher.poll()
        watcher.poll()  # asked again: refused once, not reloaded
        assert watcher.model().version == 1
    assert [v for v, _ in refusals] == list(expected)
    for version, reason in refusals:
        assert expected[version] in reason, (version, reason)
    with pytest.raises(ModelTrustError, match="same score"):
        load_model_version(models, constant)

    # A scorer starting now, with the alias on a bad version, serves the newest good one.
    starting: list[tuple[int, str]] = []
    fresh = ServingModelWatcher(models, on_refusal=lambda v, r: starting.append((v, r)))
    assert fresh.model().version == 1
    assert [v for v, _ in starting] == [tampered, constant, raising, cloudpickled]


def test_a_scorer_started_on_a_refused_version_scores_with_the_last_good_one(
    models: Settings, tmp_path: Path
) -> None:
    constant = register_variant(models, constant_pipeline(), like=1)
    set_champion(models, constant)
    with scoring_topics(models):
        path = tmp_path / "day.csv"
        write_ulb_day(path, 300, seed=3)
        batch_id = ingest_ulb_day(models, path)
        publish_batch(models, batch_id)
        service = ScoringService(models, ScoringOptions(idle_exit_s=3.0, batch_size=200))
        summary = service.run()

    assert summary.model_versions == {1}
    assert {r.model_version for r in predictions(models, batch_id)} == {1}
    assert len(predictions(models, batch_id)) == 300
    refused = service.metrics.model_refusals.labels(str(constant))._value.get()
    assert refused == 1
    with connect(models) as conn:
        row = conn.execute(
            "SELECT reason, refusals FROM model_refusals WHERE model_name = %s "
            "AND model_version = %s",
            (models.model_name, constant),
        ).fetchone()
    assert row is not None and "same score" in row[0] and row[1] == 1
