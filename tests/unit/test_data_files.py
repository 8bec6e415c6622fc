"""Reading CSV/Parquet files: wrong or empty files fail whole; broken lines come back as rejects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from raw_files import raw_frame, write_csv

from fraudpipe.data.files import FileSource, read_rows_file
from fraudpipe.errors import EmptySourceError, SourceColumnsError, SourceReadError

pytestmark = pytest.mark.unit


def test_clean_csv_reads_every_row_as_float(tmp_path: Path) -> None:
    frame = raw_frame(20)
    rows = read_rows_file(write_csv(frame, tmp_path / "cards.csv"), "file:cards")
    assert rows.rejections == []
    assert rows.frame.index.tolist() == list(range(20))
    assert (rows.frame.dtypes == np.float64).all()
    np.testing.assert_array_equal(rows.frame["V5"].to_numpy(), frame["V5"].to_numpy())


def test_source_name_is_file_and_stem(tmp_path: Path) -> None:
    assert FileSource(tmp_path / "cards_2025.csv").name == "file:cards_2025"
    assert FileSource(tmp_path / "cards_2025.csv").is_synthetic is False


def test_missing_column_fails_the_file_with_names(tmp_path: Path) -> None:
    path = write_csv(
        raw_frame(5).drop(columns=["V17"]).rename(columns={"V3": "v3"}), tmp_path / "a.csv"
    )
    with pytest.raises(SourceColumnsError) as err:
        read_rows_file(path, "file:a")
    assert err.value.missing == ["V3", "V17"]
    assert err.value.unexpected == ["v3"]
    assert "missing V3, V17" in str(err.value)


def test_empty_file_and_header_only_file_fail(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(EmptySourceError):
        read_rows_file(empty, "file:empty")
    header_only = write_csv(raw_frame(0), tmp_path / "header.csv")
    with pytest.raises(EmptySourceError):
        read_rows_file(header_only, "file:header")


def test_missing_file_and_unknown_type_fail(tmp_path: Path) -> None:
    with pytest.raises(SourceReadError, match="does not exist"):
        read_rows_file(tmp_path / "nope.csv", "file:nope")
    other = tmp_path / "cards.xlsx"
    other.write_bytes(b"x")
    with pytest.raises(SourceReadError, match="unknown file type"):
        read_rows_file(other, "file:cards")


def test_truncated_last_line_is_rejected_and_the_rest_kept(tmp_path: Path) -> None:
    path = write_csv(raw_frame(8), tmp_path / "cut.csv")
    text = path.read_text()
    path.write_text(text[: len(text) - 250])  # cut inside the last row, no final newline
    rows = read_rows_file(path, "file:cut")
    assert len(rows.frame) == 7
    [reject] = rows.rejections
    assert reject.position == 7
    assert reject.reason.startswith("truncated line:")
    assert reject.raw["Time"] == "420"


def test_text_in_a_number_keeps_the_text_for_validation(tmp_path: Path) -> None:
    path = write_csv(
        raw_frame(5).astype({"V4": object}).assign(V4=["1", "2", "oops", "4", "5"]),
        tmp_path / "t.csv",
    )
    rows = read_rows_file(path, "file:t")
    assert rows.rejections == []
    assert rows.frame.loc[2, "V4"] == "oops"
    assert len(rows.frame) == 5


def test_row_with_extra_fields_is_rejected_not_dropped(tmp_path: Path) -> None:
    path = write_csv(raw_frame(4), tmp_path / "wide.csv")
    lines = path.read_text().splitlines()
    lines[2] += ",999,888"
    path.write_text("\n".join(lines) + "\n")
    rows = read_rows_file(path, "file:wide")
    assert rows.frame.index.tolist() == [0, 2, 3]
    [reject] = rows.rejections
    assert reject.position == 1
    assert reject.reason == "wrong number of fields: 33 of 31 fields"
    assert reject.raw["extra_fields"] == ["999", "888"]


def test_parquet_with_ids(tmp_path: Path) -> None:
    frame = raw_frame(6, with_ids=True, first_id=2**50)
    path = tmp_path / "cards.parquet"
    frame.to_parquet(path)
    rows = read_rows_file(path, "file:cards")
    assert rows.frame["id"].tolist() == [str(2**50 + i) for i in range(6)]
    assert len(rows.frame) == 6


def test_damaged_parquet_fails(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    raw_frame(6).to_parquet(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SourceReadError, match="not a readable Parquet file"):
        read_rows_file(path, "file:bad")
