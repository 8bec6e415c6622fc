"""The background CSV reader: every row once, in order, in pieces whose first one is small."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from raw_files import RAW_COLUMNS, raw_frame, write_csv

from fraudpipe.data.csv_stream import CsvStreamError, stream_numeric_csv

pytestmark = pytest.mark.unit

#: ~6 MB of CSV: a dozen of the reader's 512 KiB blocks, so pieces have room to differ in size.
ROWS = 12_000
PIECE_ROWS = 4_000


def test_pieces_cover_every_row_in_order_and_the_first_is_small(tmp_path: Path) -> None:
    frame = raw_frame(ROWS)
    path = write_csv(frame, tmp_path / "rows.csv")

    pieces = list(stream_numeric_csv(path, RAW_COLUMNS, PIECE_ROWS))

    sizes = [len(p) for p in pieces]
    assert sum(sizes) == ROWS
    # The first piece is cut after a few blocks, so the caller starts early; then full pieces.
    assert sizes[0] < PIECE_ROWS
    assert all(size >= PIECE_ROWS for size in sizes[1:-1])
    joined = pd.concat(pieces)
    assert joined.index.tolist() == list(range(ROWS))
    assert (joined.dtypes == np.float64).all()
    np.testing.assert_array_equal(joined.to_numpy(), frame.to_numpy(dtype=np.float64))


def test_columns_come_in_the_order_asked_for(tmp_path: Path) -> None:
    frame = raw_frame(100)
    path = write_csv(frame, tmp_path / "rows.csv")
    order = list(reversed(RAW_COLUMNS))

    [piece] = list(stream_numeric_csv(path, order, PIECE_ROWS))

    assert list(piece.columns) == order
    np.testing.assert_array_equal(piece.to_numpy(), frame[order].to_numpy(dtype=np.float64))


def test_a_broken_line_stops_the_reader_after_the_rows_before_it(tmp_path: Path) -> None:
    path = write_csv(raw_frame(ROWS), tmp_path / "rows.csv")
    lines = path.read_text().splitlines(keepends=True)
    lines[ROWS - 10] = "1,2,3\n"  # data row ROWS - 11: too few fields
    path.write_text("".join(lines))

    delivered = 0
    with pytest.raises(CsvStreamError) as failure:
        for piece in stream_numeric_csv(path, RAW_COLUMNS, PIECE_ROWS):
            delivered += len(piece)
    assert delivered == failure.value.rows_before
    assert 0 < delivered <= ROWS - 11
