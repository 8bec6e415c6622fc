"""The check that closes a fully scored batch, against real PostgreSQL."""

from __future__ import annotations

import re

import pytest
from scoring_support import ingest_ulb_day, write_ulb_day

from fraudpipe.adapters.postgres.batch_progress import LAST_UNSCORED, has_unscored
from fraudpipe.adapters.postgres.connect import Connection, connect
from fraudpipe.config import Settings

pytestmark = pytest.mark.integration

ROWS = 3_000


@pytest.fixture(scope="module")
def batch_id(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("progress") / "cards_progress.csv"
    write_ulb_day(path, ROWS, seed=71)
    return ingest_ulb_day(fresh_db, path)


def _predict(conn: Connection, batch_id: str, version: int, where: str) -> None:
    conn.execute(
        "INSERT INTO predictions (transaction_id, model_name, model_version, batch_id, score, "
        "is_fraud, threshold, scored_at) SELECT transaction_id, 'm', %s, batch_id, 0.1, false, "
        f"0.5, now() FROM transactions WHERE batch_id = %s AND {where}",
        (version, batch_id),
    )


@pytest.fixture(autouse=True)
def no_predictions(fresh_db: Settings) -> None:
    with connect(fresh_db, "owner") as conn:  # the app role may not delete
        conn.execute("DELETE FROM predictions")


def test_a_transaction_without_prediction_anywhere_in_the_batch_is_found(
    fresh_db: Settings, batch_id: str
) -> None:
    with connect(fresh_db) as conn:
        _predict(conn, batch_id, 2, "source_row <> 1500")
        conn.commit()
        assert has_unscored(conn, batch_id)
        # Scored by another version (say before a promotion and a restart): scored all the same.
        _predict(conn, batch_id, 3, "source_row = 1500")
        conn.commit()
        assert not has_unscored(conn, batch_id)


def test_every_probe_is_a_primary_key_lookup_even_when_predictions_looked_empty(
    fresh_db: Settings, batch_id: str
) -> None:
    # Statistics taken while the table was empty, then the scorer wrote the batch's end: the
    # planner once compared every transaction with every prediction here.
    with connect(fresh_db, "owner", autocommit=True) as owner:
        owner.execute("ANALYZE predictions")
    with connect(fresh_db) as conn:
        _predict(conn, batch_id, 2, f"source_row >= {ROWS // 3}")
        conn.commit()
        assert has_unscored(conn, batch_id)
        # Same transaction, so the same planner settings as the check's.
        plan = "\n".join(
            str(row[0]) for row in conn.execute("EXPLAIN " + LAST_UNSCORED, {"batch_id": batch_id})
        )
    assert "Seq Scan" not in plan
    assert "Join" not in plan
    assert re.search(r"Index (Only )?Scan using predictions_pkey on predictions", plan)
    assert re.search(r"Index Cond: \(+transaction_id = t\.transaction_id\)", plan)
