"""The publisher refuses a block whose values break the transaction contract, naming the field."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from fraudpipe.adapters.postgres.batch_reads import TransactionColumns
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.errors import ContractViolationError
from fraudpipe.publish.encoding import BlockEncoder
from fraudpipe.records import TransactionRecord

pytestmark = pytest.mark.unit


def _block(n: int) -> TransactionColumns:
    ids = np.array([str(uuid.uuid4()).encode() for _ in range(n)], dtype="S36")
    return TransactionColumns(
        batch_id="ulb:2025-09-20",
        source="ulb",
        ids=ids.view(np.uint8).reshape(n, 36),
        event_time_ms=np.arange(n, dtype=np.int64) + 1_758_326_400_000,
        features={name: np.ones(n) for name in FEATURE_COLUMNS},
    )


def _refuse(record: TransactionRecord, ctx: object) -> bytes:
    raise AssertionError("no value may be encoded from a block that breaks the contract")


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [("v7", np.nan, "finite"), ("amount", np.inf, "finite"), ("amount", -0.01, ">= 0")],
)
def test_a_bad_value_fails_the_block_with_the_records_own_error(
    field: str, value: float, rule: str
) -> None:
    block = _block(5)
    block.features[field][3] = value

    with pytest.raises(ContractViolationError, match=rule) as caught:
        BlockEncoder(_refuse, None, "t")(block)

    assert caught.value.field == field


def test_a_row_reads_back_as_its_record() -> None:
    block = _block(3)

    record = block.record(2)

    assert str(record.transaction_id).encode() == block.ids[2].tobytes()
    assert int(record.event_time.timestamp() * 1000) == block.event_time_ms[2]
    assert record.features() == tuple(1.0 for _ in FEATURE_COLUMNS)
