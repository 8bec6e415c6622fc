"""The API's decisions: the pipeline's own probabilities, the version's threshold, each
transaction's values and lineage, in order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from fraudpipe.columns import FEATURE_COLUMNS, MODEL_INPUT_COLUMNS
from fraudpipe.model.features import build_preprocessor
from fraudpipe.model.serving import ServingModel
from fraudpipe.serving.decide import decide
from fraudpipe.serving.schema import transaction_model

pytestmark = pytest.mark.unit

DAY0 = 1_758_326_400_000


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "event_time": DAY0 + rng.integers(0, 86_400, n) * 1000,
            "amount": rng.gamma(2.0, 30.0, n).round(2),
            **{f"v{i}": rng.normal(size=n) for i in range(1, 29)},
        }
    )[MODEL_INPUT_COLUMNS]
    frame.loc[: n // 5, "v14"] -= 6.0
    return frame


def _model(threshold: float) -> ServingModel:
    frame = _frame(2000, seed=0)
    label = (frame["v14"] < -3).astype(int)
    pipeline = Pipeline(
        [("features", build_preprocessor(use_hour=True)), ("clf", LogisticRegression())]
    )
    pipeline.fit(frame, label)
    return ServingModel("fraud-detector", 7, threshold, pipeline)


def _transactions(frame: pd.DataFrame) -> list[BaseModel]:
    model = transaction_model(margin=1.0)
    return [
        model.model_validate(
            {
                "transaction_id": str(uuid.uuid4()),
                "batch_id": "pos:2025-09-20",
                "source": "pos",
                "event_time": datetime.fromtimestamp(row["event_time"] / 1000, UTC).isoformat(),
                **{name: float(row[name]) for name in FEATURE_COLUMNS},
            }
        )
        for row in frame.to_dict("records")
    ]


@pytest.mark.parametrize("n", [1, 40])
def test_decisions_are_the_pipeline_probabilities_with_values_and_lineage(n: int) -> None:
    model = _model(threshold=0.4)
    frame = _frame(n, seed=1)
    transactions = _transactions(frame)
    requests = [(uuid.uuid4(), f"client-{i}") for i in range(n)]
    at = datetime(2026, 12, 6, tzinfo=UTC)

    records = decide(model, transactions, requests, decided_at=at)

    expected = model.pipeline.predict_proba(frame)[:, 1]
    assert [r.score for r in records] == expected.tolist()
    assert [r.is_fraud for r in records] == (expected >= 0.4).tolist()
    for record, t, (request_id, client) in zip(records, transactions, requests, strict=True):
        assert record.transaction_id == t.transaction_id  # type: ignore[attr-defined]
        assert [getattr(record, c) for c in FEATURE_COLUMNS] == [
            getattr(t, c) for c in FEATURE_COLUMNS
        ]
        assert (record.request_id, record.client, record.decided_at) == (request_id, client, at)
        assert (record.model_name, record.model_version, record.threshold) == (
            "fraud-detector", 7, 0.4,
        )  # fmt: skip
        assert bool(record.top_drivers) == record.is_fraud
    assert any(r.is_fraud for r in records) or n == 1
