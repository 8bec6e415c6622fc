"""One vocabulary of columns: the names a transaction's fields have in every layer.

Two spellings exist, on purpose. Raw names are those of the ULB file and of any source in its
format (``Time``, ``V1``..``V28``, ``Amount``, ``Class``); stored names are those of the
database, the Avro contracts and the model (``event_time``, ``amount``, ``v1``..``v28``,
``label``). Ingestion is the one place that turns one into the other. The Alembic migrations
spell their columns out instead of importing these: a migration must keep meaning what it
meant when it was written.
"""

from __future__ import annotations

from typing import Final

V_COUNT: Final = 28
"""The ULB data's anonymised PCA components."""

V_COLUMNS: Final[list[str]] = [f"v{i}" for i in range(1, V_COUNT + 1)]

FEATURE_COLUMNS: Final[list[str]] = ["amount", *V_COLUMNS]
"""A transaction's float features, in the order the database and the contracts hold them."""

MODEL_INPUT_COLUMNS: Final[list[str]] = ["event_time", *FEATURE_COLUMNS]
"""What the scoring service passes to the model, in this order.

``event_time`` is int64 epoch milliseconds (UTC), ``amount`` and ``v1``..``v28`` are float64.
A list (not a tuple) so ``frame[MODEL_INPUT_COLUMNS]`` selects columns; do not mutate it.
"""

LABEL_COLUMN: Final = "label"

RAW_V_COLUMNS: Final = tuple(f"V{i}" for i in range(1, V_COUNT + 1))
RAW_TIME_COLUMN: Final = "Time"
RAW_AMOUNT_COLUMN: Final = "Amount"
RAW_LABEL_COLUMN: Final = "Class"
RAW_ID_COLUMN: Final = "id"
RAW_FEATURE_COLUMNS: Final = (RAW_AMOUNT_COLUMN, *RAW_V_COLUMNS)
"""`FEATURE_COLUMNS` by their raw names, in the same order."""
RAW_REQUIRED_COLUMNS: Final = (RAW_TIME_COLUMN, *RAW_V_COLUMNS, RAW_AMOUNT_COLUMN)
RAW_OPTIONAL_COLUMNS: Final = (RAW_LABEL_COLUMN, RAW_ID_COLUMN)
