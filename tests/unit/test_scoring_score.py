"""Scoring a micro-batch: one vectorised call, the version's threshold, alert drivers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from fraudpipe.columns import MODEL_INPUT_COLUMNS
from fraudpipe.microbatch import TransactionBatch, from_epoch_ms
from fraudpipe.model.explanations import alert_drivers
from fraudpipe.model.features import build_preprocessor
from fraudpipe.model.serving import ServingModel
from fraudpipe.records import TransactionRecord
from fraudpipe.scoring.score import score_batch

pytestmark = pytest.mark.unit

DAY0 = 1_758_326_400_000


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.1).astype(int)
    frame = pd.DataFrame(
        {
            "event_time": DAY0 + rng.integers(0, 86_400_000, n),
            "amount": rng.gamma(2.0, 30.0, n),
            **{f"v{i}": rng.normal(size=n) for i in range(1, 29)},
        }
    )[MODEL_INPUT_COLUMNS]
    frame.loc[label == 1, "v14"] -= 6.0
    return frame, label


def _model(classifier: object, version: int = 4, threshold: float = 0.5) -> ServingModel:
    frame, label = _frame(2000, seed=0)
    pipeline = Pipeline([("features", build_preprocessor(use_hour=True)), ("clf", classifier)])
    pipeline.fit(frame, label)
    return ServingModel("fraud-detector", version, threshold, pipeline)


def _batch(frame: pd.DataFrame, stamps: list[int]) -> TransactionBatch:
    records = [
        TransactionRecord(
            uuid.uuid4(),
            "ulb:2025-09-20",
            "ulb",
            from_epoch_ms(int(row.event_time)),
            float(row.amount),
            *(float(getattr(row, f"v{i}")) for i in range(1, 29)),
        )
        for row in frame.itertuples()
    ]
    return TransactionBatch.from_records(records, stamps, list(range(len(records))))


def test_scores_are_the_pipeline_probabilities_with_the_versions_threshold() -> None:
    model = _model(LogisticRegression(max_iter=500), threshold=0.3)
    frame, _ = _frame(50, seed=1)
    scored_at = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [int(scored_at.timestamp() * 1000) - 250] * 50

    scored = score_batch(model, _batch(frame, stamps), scored_at)

    expected = model.pipeline.predict_proba(frame)[:, 1]
    np.testing.assert_array_equal(scored.scores, expected)
    assert scored.is_fraud.tolist() == (expected >= 0.3).tolist()
    assert (scored.model_version, scored.threshold) == (4, 0.3)
    assert scored.latency_ms.tolist() == [250.0] * 50
    assert [p.score for p in scored.predictions()] == scored.scores.tolist()


def test_an_empty_micro_batch_scores_to_nothing() -> None:
    model = _model(LogisticRegression(max_iter=500))
    empty = _batch(_frame(0, seed=2)[0], [])
    assert len(score_batch(model, empty, datetime.now(UTC))) == 0


def test_alerts_of_a_linear_model_name_the_inputs_that_pushed_them() -> None:
    model = _model(LogisticRegression(max_iter=500))
    frame, label = _frame(400, seed=3)
    frauds = frame[label == 1]

    method, drivers = alert_drivers(model, frauds)

    assert method == "linear"
    assert len(drivers) == len(frauds)
    assert all(0 < len(d) <= 3 for d in drivers)
    assert all(d[0].contribution >= d[-1].contribution > 0 for d in drivers)
    assert sum(d[0].feature == "v14" for d in drivers) > len(drivers) / 2


def test_alerts_of_a_tree_model_carry_shap_values_that_add_up_to_its_log_odds() -> None:
    model = _model(HistGradientBoostingClassifier(max_iter=30, random_state=0))
    frame, label = _frame(400, seed=4)
    assert model.explain is not None
    columns = {c: frame[c].to_numpy() for c in MODEL_INPUT_COLUMNS}

    attribution = model.explain(columns)
    method, drivers = alert_drivers(model, frame[label == 1])

    # SHAP's promise, checked on this model: the values and the expected value sum to the
    # classifier's raw output (log-odds) for every row.
    raw = model.pipeline.decision_function(frame)
    base = raw - attribution.contributions.sum(axis=1)
    np.testing.assert_allclose(base, base[0], atol=1e-9)
    assert (method, attribution.method) == ("tree_shap", "tree_shap")
    assert all(0 < len(d) <= 3 for d in drivers)
    assert sum(d[0].feature == "v14" for d in drivers) > len(drivers) / 2
    assert all(d.description for row in drivers for d in row)


def test_models_that_cannot_attribute_their_score_give_no_drivers() -> None:
    model = _model(KNeighborsClassifier(n_neighbors=3))
    frame, _ = _frame(5, seed=4)
    assert alert_drivers(model, frame) == ("", [(), (), (), (), ()])
