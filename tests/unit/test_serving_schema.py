"""The scoring API's request model: in step with the Transaction contract, the stream's bounds,
and no body that makes validation do anything but accept or refuse (property-based)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from fraudpipe.adapters.avro import Contract, load_schema_str
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.data.bounds import feature_bounds
from fraudpipe.errors import ConfigurationError
from fraudpipe.serving.keys import ApiKeys
from fraudpipe.serving.schema import MAX_TEXT, transaction_model

pytestmark = pytest.mark.unit

MARGIN = 1.0
Transaction = transaction_model(MARGIN)
BOUNDS = feature_bounds(MARGIN)
_AVRO_TO_JSON_SCHEMA = {"string": "string", "double": "number", "long": "string"}


def _valid() -> dict[str, Any]:
    return {
        "transaction_id": "0b6b1b0e-3c0a-5f7e-8d7a-2b1f5e4c3d2a",
        "batch_id": "pos:2026-12-05",
        "source": "pos",
        "event_time": "2026-12-05T10:00:00+01:00",
        **dict.fromkeys(FEATURE_COLUMNS, 0.5),
    }


def test_the_request_model_has_the_contracts_fields_in_its_order() -> None:
    contract = json.loads(load_schema_str(Contract.TRANSACTION))
    schema = Transaction.model_json_schema()

    assert list(schema["properties"]) == [f["name"] for f in contract["fields"]]
    assert set(schema["required"]) == {f["name"] for f in contract["fields"]}
    assert schema["additionalProperties"] is False
    for field in contract["fields"]:
        avro = field["type"] if isinstance(field["type"], str) else field["type"]["type"]
        assert schema["properties"][field["name"]]["type"] == _AVRO_TO_JSON_SCHEMA[avro]


def test_every_feature_has_the_streams_bounds() -> None:
    properties = Transaction.model_json_schema()["properties"]

    for name, low, high in zip(FEATURE_COLUMNS, BOUNDS.low, BOUNDS.high, strict=True):
        assert (properties[name]["minimum"], properties[name]["maximum"]) == (low, high)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", -0.01),
        ("v14", BOUNDS.of("v14")[0] - 1.0),
        ("v1", "1.5"),
        ("v2", None),
        ("v3", True),
        ("transaction_id", "not-a-uuid"),
        ("event_time", "2026-12-05T10:00:00"),  # no zone: which instant?
        ("event_time", "1969-12-31T23:59:59Z"),
        ("batch_id", ""),
        ("source", "x" * (MAX_TEXT + 1)),
        ("source", 7),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        Transaction.model_validate({**_valid(), field: value})

    assert {e["loc"][0] for e in caught.value.errors()} == {field}


def test_infinity_and_nan_are_refused() -> None:
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValidationError):
            Transaction.model_validate({**_valid(), "amount": value})


_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*_valid(), "extra", ""]), _json, max_size=len(_valid()) + 2
    ).map(lambda d: {**_valid(), **d})
)
def test_any_json_body_is_accepted_within_bounds_or_refused_with_field_errors(
    body: dict[str, Any],
) -> None:
    try:
        tx = Transaction.model_validate(body)
    except ValidationError as exc:
        assert all(e["loc"] for e in exc.errors())
        return
    for name, low, high in zip(FEATURE_COLUMNS, BOUNDS.low, BOUNDS.high, strict=True):
        assert low <= getattr(tx, name) <= high
    assert tx.event_time.utcoffset() is not None  # type: ignore[attr-defined]


def test_keys_are_named_pairs_of_long_enough_secrets() -> None:
    keys = ApiKeys.parse(SecretStr("pos=abcdefghijklmnopqrst, batch = ABCDEFGHIJKLMNOPQRST"))

    assert keys.who("abcdefghijklmnopqrst") == "pos"
    assert keys.who("ABCDEFGHIJKLMNOPQRST") == "batch"
    assert keys.who("abcdefghijklmnopqrs") is None
    assert keys.who("") is None and keys.who(None) is None


@pytest.mark.parametrize(
    "configured",
    [
        None,
        "",
        "nokey",
        "=abcdefghijklmnopqrst",
        "a=short",
        "a=abcdefghijklmnopqrst,a=ABCDEFGHIJKLMNOPQRST",
    ],
)
def test_bad_key_settings_refuse_to_start(configured: str | None) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ApiKeys.parse(None if configured is None else SecretStr(configured))

    assert "abcdefghijklmnopqrst" not in str(caught.value)
