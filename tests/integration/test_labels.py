"""Label import against the real database: good rows added once, bad rows quarantined with why,
the latest known label wins, what was known at a cut-off stays answerable, and the app role
cannot rewrite a label."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from raw_files import raw_frame, write_csv
from typer.testing import CliRunner

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.adapters.postgres.labels import labels_as_of
from fraudpipe.cli import app
from fraudpipe.config import Settings, get_settings
from fraudpipe.data.files import FileSource
from fraudpipe.errors import LabelFileError, ReviewDecisionError
from fraudpipe.ingest import ingest
from fraudpipe.labels import Decision, import_labels, record_decision

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
STRANGER = "00000000-0000-4000-8000-000000000000"


def _transaction_ids(settings: Settings, tmp_path: Path, unique: str, n: int) -> list[str]:
    path = write_csv(raw_frame(n, seconds_apart=600.0), tmp_path / f"tx_{unique}.csv")
    source = FileSource(path)
    ingest(settings, source)
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT t.transaction_id::text FROM transactions t JOIN batches b USING (batch_id) "
            "WHERE b.source = %s ORDER BY t.source_row",
            (source.name,),
        ).fetchall()
    return [r[0] for r in rows]


def _label_file(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    pd.DataFrame(
        [
            {
                "transaction_id": tx,
                "label": label,
                "source": source,
                "labelled_by": "visa-feed" if source == "chargeback" else "ana",
                "known_at": known_at,
                "note": "",
            }
            for tx, label, source, known_at in rows
        ]
    ).to_csv(path, index=False)
    return path


def test_import_adds_once_quarantines_with_why_and_the_latest_wins(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    a, b, c = _transaction_ids(fresh_db, tmp_path, unique, 3)
    first = _label_file(
        tmp_path / f"chargebacks_{unique}.csv",
        [
            (a, "fraud", "chargeback", "2026-11-20T09:00:00Z"),
            (b, "legitimate", "dataset", "2026-11-18T00:00:00Z"),
            (STRANGER, "fraud", "chargeback", "2026-11-20T09:00:00Z"),  # not ours
            (c, "perhaps", "chargeback", "2026-11-20T09:00:00Z"),  # not a label
        ],
    )

    result = import_labels(fresh_db, first, now=NOW)

    assert (result.rows, result.added, result.already_known, result.quarantined) == (4, 2, 0, 2)
    with connect(fresh_db) as conn:
        reasons = dict(
            conn.execute(
                "SELECT source_row, reason FROM quarantine WHERE source = %s",
                (f"labels:{first.name}",),
            ).fetchall()
        )
    assert set(reasons) == {2, 3}
    assert "no transaction fraudpipe holds" in reasons[2]
    assert "label" in reasons[3]

    again = import_labels(fresh_db, first, now=NOW)
    assert (again.added, again.already_known, again.quarantined) == (0, 2, 2)
    with connect(fresh_db) as conn:
        count = conn.execute(
            "SELECT count(*) FROM quarantine WHERE source = %s", (f"labels:{first.name}",)
        ).fetchone()
    assert count == (2,)

    # An analyst later reverses the chargeback: the latest known label wins, and what was
    # believed before the decision stays answerable (a retrain with that cut-off sees it).
    review = _label_file(
        tmp_path / f"review_{unique}.csv", [(a, "legitimate", "analyst", "2026-11-25T14:30:00Z")]
    )
    assert import_labels(fresh_db, review, now=NOW).added == 1
    with connect(fresh_db) as conn:
        now = labels_as_of(conn, NOW).set_index("transaction_id")
        before = labels_as_of(conn, datetime(2026, 11, 21, tzinfo=UTC)).set_index("transaction_id")
        earliest = labels_as_of(conn, datetime(2026, 11, 19, tzinfo=UTC))
    assert not bool(now.loc[a, "is_fraud"]) and now.loc[a, "source"] == "analyst"
    assert bool(before.loc[a, "is_fraud"]) and before.loc[a, "source"] == "chargeback"
    assert a not in set(earliest["transaction_id"]) and b in set(earliest["transaction_id"])


def test_the_app_role_cannot_rewrite_a_label(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    [a] = _transaction_ids(fresh_db, tmp_path, unique, 1)
    path = _label_file(
        tmp_path / f"one_{unique}.csv", [(a, "fraud", "chargeback", "2026-11-20T09:00:00Z")]
    )
    import_labels(fresh_db, path, now=NOW)
    with connect(fresh_db) as conn:
        for statement in (
            "UPDATE labels SET is_fraud = false WHERE transaction_id = %s",
            "DELETE FROM labels WHERE transaction_id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, (a,))
            conn.rollback()


def test_a_file_that_is_not_a_label_file_imports_nothing(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    path = tmp_path / f"wrong_{unique}.csv"
    path.write_text("transaction_id,label\n" + STRANGER + ",fraud\n")
    with pytest.raises(LabelFileError, match="missing source, labelled_by, known_at"):
        import_labels(fresh_db, path)


def test_the_cli_reports_the_counts(
    fresh_db: Settings, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    [a] = _transaction_ids(fresh_db, tmp_path, unique, 1)
    path = _label_file(
        tmp_path / f"cli_{unique}.csv", [(a, "fraud", "analyst", "2026-11-20T09:00:00Z")]
    )
    monkeypatch.setenv("FRAUDPIPE_PG_DATABASE", fresh_db.pg_database)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["labels", "import", str(path)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    assert "1 rows; 1 labels added, 0 already known, 0 quarantined" in printed


def test_an_analysts_decision_is_a_label_written_through_the_analyst_role(
    fresh_db: Settings, tmp_path: Path, unique: str
) -> None:
    (tx,) = _transaction_ids(fresh_db, tmp_path, unique, 1)

    added = record_decision(fresh_db, Decision(tx, False, " ana ", "known customer"), now=NOW)
    again = record_decision(fresh_db, Decision(tx, True, "ben"), now=NOW + timedelta(hours=1))

    assert added and again
    with connect(fresh_db) as conn:
        latest = labels_as_of(conn, NOW + timedelta(days=1))
        history = conn.execute(
            "SELECT is_fraud, labelled_by, note FROM labels WHERE transaction_id = %s"
            " ORDER BY known_at",
            (tx,),
        ).fetchall()
    assert history == [(False, "ana", "known customer"), (True, "ben", None)]
    assert latest.set_index("transaction_id").loc[tx, "is_fraud"]  # the latest decision wins


@pytest.mark.parametrize(
    ("decision", "says"),
    [
        (Decision(STRANGER, True, "ana"), "no transaction fraudpipe holds"),
        (Decision("not-a-uuid", True, "ana"), "transaction_id"),
        (Decision("{tx}", True, ""), "labelled_by"),
        (Decision("{tx}", True, "ana\x00"), "labelled_by"),
        (Decision("{tx}", True, "ana", "x" * 2001), "note"),
    ],
    ids=["stranger", "not-an-id", "nobody", "control-character", "long-note"],
)
def test_a_bad_decision_is_refused_whole(
    fresh_db: Settings, tmp_path: Path, unique: str, decision: Decision, says: str
) -> None:
    (tx,) = _transaction_ids(fresh_db, tmp_path, unique, 1)
    decision = Decision(
        decision.transaction_id.replace("{tx}", tx),
        decision.is_fraud,
        decision.analyst,
        decision.note,
    )
    with pytest.raises(ReviewDecisionError, match=says):
        record_decision(fresh_db, decision, now=NOW)
    with connect(fresh_db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM labels WHERE transaction_id::text = %s", (tx,)
        ).fetchone() == (0,)


def test_the_analyst_role_adds_labels_and_nothing_else(fresh_db: Settings) -> None:
    with connect(fresh_db, "analyst") as conn:
        for table in ("transactions", "predictions", "alert_reasons", "labels"):
            conn.execute(f"SELECT count(*) FROM {table}")
    refused = [
        "SELECT count(*) FROM batches",
        "SELECT count(*) FROM quarantine",
        "INSERT INTO predictions (transaction_id, model_name, model_version, batch_id, score,"
        " is_fraud, threshold, scored_at) VALUES (gen_random_uuid(), 'm', 1, 'b', 0.5, true, 0.5,"
        " now())",
        "UPDATE labels SET is_fraud = NOT is_fraud",
        "DELETE FROM labels",
    ]
    for statement in refused:
        with (
            connect(fresh_db, "analyst") as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement)
