"""A numeric CSV read in pieces by a background thread, while the caller works on the last one.

Parsing the ULB file is about a third of an ingest's CPU. Parsed whole first, it left the
database idle until the last line was read; read here, the first piece reaches the caller
after ~0.2 s and each later piece is parsed (pyarrow releases the GIL) while the caller
validates and loads the previous one. pyarrow's streaming reader on one thread, in 512 KiB
blocks, was the fastest setting measured on this machine (0.7–0.8 s of CPU for the 150 MB
ULB file; 1–4 MiB blocks took 1.0–1.6 s, more threads only added contention).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

_BLOCK_BYTES: Final = 512 * 1024
#: Pieces parsed ahead of the caller: enough to keep the parser busy, little memory.
_AHEAD: Final = 2
_PUT_POLL_S: Final = 0.1
#: The first piece is this much smaller than the rest: the caller (and the database behind it)
#: starts after a few blocks instead of a whole piece.
_FIRST_PIECE_DIVISOR: Final = 8


class CsvStreamError(Exception):
    """The file stopped parsing (a malformed line or a value that is not a number).

    Attributes:
        rows_before: Data rows parsed before the block that failed (the bad line is after).
    """

    def __init__(self, rows_before: int, problem: str) -> None:
        super().__init__(problem)
        self.rows_before = rows_before


#: A piece, the end (None), or why the parser stopped.
_Item = pd.DataFrame | BaseException | None


def stream_numeric_csv(
    path: Path, columns: Sequence[str], piece_rows: int
) -> Iterator[pd.DataFrame]:
    """The file's rows as float64 frames of about `piece_rows` rows, indexed by row position.

    Args:
        path: The CSV; its header must name exactly `columns` (check it first).
        columns: The columns, each read as float64 (an empty field becomes NaN), in this
            order whatever the file's.
        piece_rows: Rows per piece, at least (the first piece is smaller, the last may be).

    Raises:
        CsvStreamError: A line with the wrong number of fields, or a field that is not a
            number; the pieces before it were delivered.
    """
    pieces: queue.Queue[_Item] = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()
    parser = threading.Thread(
        target=_parse,
        args=(path, list(columns), piece_rows, pieces, stop),
        name="csv-parser",
        daemon=True,
    )
    parser.start()
    try:
        while True:
            item = pieces.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # The caller may stop early (a failure downstream): let the parser end, not block.
        stop.set()
        parser.join()


def _parse(
    path: Path,
    columns: list[str],
    piece_rows: int,
    pieces: queue.Queue[_Item],
    stop: threading.Event,
) -> None:
    position = 0
    group: list[pa.RecordBatch] = []
    grouped = 0
    target = max(1, piece_rows // _FIRST_PIECE_DIVISOR)

    def hand_over(item: _Item) -> bool:
        while not stop.is_set():
            try:
                pieces.put(item, timeout=_PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def flush() -> bool:
        nonlocal position, group, grouped, target
        frame = pa.Table.from_batches(group).to_pandas()
        frame.index = pd.RangeIndex(position, position + len(frame))
        position += len(frame)
        group, grouped, target = [], 0, piece_rows
        return hand_over(frame)

    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES, use_threads=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: pa.float64() for c in columns}, include_columns=columns
            ),
        )
        for batch in reader:
            group.append(batch)
            grouped += batch.num_rows
            if grouped >= target and not flush():
                return
        if group and not flush():
            return
    except (pa.ArrowInvalid, OSError) as exc:
        # The rows read before the failing block are good: the days they complete can load.
        if group and not flush():
            return
        hand_over(CsvStreamError(position, str(exc)))
        return
    # A bug or MemoryError: handed over as it is, so the caller raises it instead of waiting.
    except BaseException as exc:  # noqa: BLE001
        hand_over(exc)
        return
    hand_over(None)
