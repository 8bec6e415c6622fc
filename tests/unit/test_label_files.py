"""Label files: each bad row set aside with every reason, the good rows kept, typed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from fraudpipe.data.labels import read_label_file, validate_labels
from fraudpipe.errors import LabelFileError

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
TX = "0b6a3c1e-6a0e-4f55-9a83-7d0c5a1d2e3f"
OTHER = "1c7b4d2f-7b1f-4066-8b94-8e1d6b2e3f40"


def _file(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _row(**overrides: str) -> dict[str, str]:
    row = {
        "transaction_id": TX,
        "label": "fraud",
        "source": "chargeback",
        "labelled_by": "visa-feed",
        "known_at": "2026-12-01T10:00:00Z",
        "note": "",
    }
    row.update(overrides)
    return row


def test_good_rows_are_typed(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        [_row(), _row(transaction_id=OTHER.upper(), label="0", source="Analyst", note="ok")],
    )
    rows = validate_labels(read_label_file(path), NOW)
    assert rows.reasons == {}
    frame = rows.frame
    assert frame["transaction_id"].tolist() == [TX, OTHER]
    assert frame["is_fraud"].tolist() == [True, False]
    assert frame["source"].tolist() == ["chargeback", "analyst"]
    assert frame["known_at"].iloc[0] == pd.Timestamp("2026-12-01T10:00:00Z")
    assert frame["note"].tolist() == [None, "ok"]


def test_each_bad_row_gets_every_reason_and_the_good_rows_stay(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        [
            _row(),
            _row(transaction_id="not-a-uuid", label="maybe"),
            _row(transaction_id=OTHER, known_at="2026-12-01 10:00:00"),  # no offset
            _row(transaction_id=OTHER, known_at="2027-01-01T00:00:00+00:00"),  # future
            _row(transaction_id=OTHER, source="rumour", labelled_by=""),
            _row(transaction_id=OTHER, note="x" * 2001),
        ],
    )
    rows = validate_labels(read_label_file(path), NOW)
    assert list(rows.frame.index) == [0]
    assert sorted(rows.reasons) == [1, 2, 3, 4, 5]
    assert len(rows.reasons[1]) == 2  # the id and the label
    assert "UTC offset" in rows.reasons[2][0]
    assert "future" in rows.reasons[3][0]
    assert len(rows.reasons[4]) == 2  # the source and who
    assert "note" in rows.reasons[5][0]


def test_copies_are_set_aside_and_contradictions_all(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        [
            _row(),
            _row(),  # the same label sent twice
            _row(transaction_id=OTHER, label="fraud"),
            _row(transaction_id=OTHER, label="legitimate"),  # same moment, other label
        ],
    )
    rows = validate_labels(read_label_file(path), NOW)
    assert list(rows.frame.index) == [0]
    assert "sent twice" in rows.reasons[1][0]
    assert "contradicts" in rows.reasons[2][0] and "contradicts" in rows.reasons[3][0]


def test_parquet_with_typed_columns_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "labels.parquet"
    pd.DataFrame(
        {
            "transaction_id": [TX],
            "label": [True],
            "source": ["analyst"],
            "labelled_by": ["ana"],
            "known_at": [pd.Timestamp("2026-12-01T10:00:00Z")],
        }
    ).to_parquet(path)
    rows = validate_labels(read_label_file(path), NOW)
    assert rows.reasons == {}
    assert rows.frame["is_fraud"].tolist() == [True]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("labels.csv", "transaction_id,label\n", "missing source, labelled_by, known_at"),
        ("labels.csv", ",".join([*"abc"]) + "\n", "unexpected"),
        ("labels.json", "{}", "unknown format .json"),
    ],
)
def test_a_file_that_is_not_a_label_file_is_refused_whole(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(LabelFileError, match=problem):
        read_label_file(path)
