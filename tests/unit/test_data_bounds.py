"""Each feature's bounds: its observed range widened by the margin, stated in the contract."""

from __future__ import annotations

import json

import pytest

from fraudpipe.adapters.avro import CONTRACTS_DIR
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.data.bounds import OBSERVED, feature_bounds

pytestmark = pytest.mark.unit


def test_each_range_is_widened_by_the_margin_on_both_sides() -> None:
    for margin in (0.0, 1.0, 2.5):
        bounds = feature_bounds(margin)
        for name in FEATURE_COLUMNS:
            seen_low, seen_high = OBSERVED[name]
            width = seen_high - seen_low
            low, high = bounds.of(name)
            assert high == seen_high + margin * width
            assert low == (0.0 if name == "amount" else seen_low - margin * width)


def test_raw_and_stored_names_name_the_same_bounds() -> None:
    bounds = feature_bounds()
    assert bounds.of("V14") == bounds.of("v14")
    assert bounds.of("Amount") == bounds.of("amount") == (0.0, 25_691.16 * 2)


def test_the_transaction_contract_states_the_default_bounds() -> None:
    schema = json.loads((CONTRACTS_DIR / "transaction.avsc").read_text())
    docs = {f["name"]: f["doc"] for f in schema["fields"]}
    bounds = feature_bounds()
    for name in FEATURE_COLUMNS:
        low, high = bounds.of(name)
        assert f"between {low:.6g} and {high:.6g}" in docs[name], name
