"""Compatibility is the Avro library's verdict, explained field by field in words that agree
with it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse

from fraudpipe.adapters.avro import Contract, compatibility, load_schema_str
from fraudpipe.adapters.avro.compatibility import why_unreadable

pytestmark = pytest.mark.unit


def record(*fields: dict[str, Any], name: str = "Txn") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "t", "fields": list(fields)})


AMOUNT = {"name": "amount", "type": "double"}
ID = {"name": "id", "type": {"type": "string", "logicalType": "uuid"}}


def test_identical_schemas_resolve() -> None:
    assert why_unreadable(record(ID, AMOUNT), record(ID, AMOUNT)) == []


def test_every_real_contract_reads_itself() -> None:
    for contract in Contract:
        text = load_schema_str(contract)
        assert why_unreadable(text, text) == [], contract


def test_new_field_with_default_resolves_and_without_default_is_named() -> None:
    old = record(ID, AMOUNT)
    with_default = record(ID, AMOUNT, {"name": "currency", "type": "string", "default": "EUR"})
    without = record(ID, AMOUNT, {"name": "mcc", "type": "int"})

    assert why_unreadable(with_default, old) == []
    [problem] = why_unreadable(without, old, reader_label="the new", writer_label="version 1")
    assert "'mcc'" in problem
    assert "without a default" in problem
    assert "version 1" in problem


def test_removed_field_is_fine_for_new_readers_but_not_for_old_ones() -> None:
    old = record(ID, AMOUNT)
    new = record(ID)

    assert why_unreadable(new, old) == []
    [problem] = why_unreadable(old, new)
    assert "'amount'" in problem


@pytest.mark.parametrize(
    ("writer", "reader"),
    [("int", "long"), ("int", "double"), ("float", "double"), ("string", "bytes")],
)
def test_promotions_resolve(writer: str, reader: str) -> None:
    old = record({"name": "x", "type": writer})
    new = record({"name": "x", "type": reader})

    assert why_unreadable(new, old) == []


def test_type_change_without_promotion_names_both_types() -> None:
    old = record(ID, AMOUNT)
    new = record(ID, {"name": "amount", "type": "string"})

    [problem] = why_unreadable(new, old)
    assert "'amount'" in problem
    assert "double" in problem
    assert "string" in problem


def test_narrowing_is_refused() -> None:
    old = record({"name": "x", "type": "long"})
    new = record({"name": "x", "type": "int"})

    assert why_unreadable(new, old)


def test_optional_union_reads_the_plain_type_but_not_the_reverse() -> None:
    plain = record({"name": "note", "type": "string"})
    optional = record({"name": "note", "type": ["null", "string"], "default": None})

    assert why_unreadable(optional, plain) == []
    [problem] = why_unreadable(plain, optional)
    assert "null" in problem


def test_renamed_record_needs_an_alias() -> None:
    old = record(AMOUNT, name="Txn")
    renamed = record(AMOUNT, name="Payment")
    aliased = json.dumps({**json.loads(renamed), "aliases": ["Txn"]})

    assert "aliases" in why_unreadable(renamed, old)[0]
    assert why_unreadable(aliased, old) == []


def test_nested_array_of_records_is_walked() -> None:
    driver = {
        "type": "record",
        "name": "Driver",
        "fields": [{"name": "feature", "type": "string"}],
    }
    driver_v2 = {**driver, "fields": [*driver["fields"], {"name": "weight", "type": "double"}]}
    old = record({"name": "drivers", "type": {"type": "array", "items": driver}})
    new = record({"name": "drivers", "type": {"type": "array", "items": driver_v2}})

    [problem] = why_unreadable(new, old)
    assert "'drivers[].weight'" in problem


def test_enum_losing_a_symbol_needs_a_default() -> None:
    def enum(*symbols: str, **extra: Any) -> str:
        kind = {"type": "enum", "name": "Channel", "symbols": list(symbols), **extra}
        return record({"name": "channel", "type": kind})

    assert why_unreadable(enum("POS"), enum("POS", "WEB"))
    assert why_unreadable(enum("POS", "OTHER", default="OTHER"), enum("POS", "WEB")) == []


def _enum_record(*symbols: str, **extra: Any) -> str:
    kind = {"type": "enum", "name": "Channel", "symbols": list(symbols), **extra}
    return record({"name": "channel", "type": kind})


_DRIVER = {"type": "record", "name": "Driver", "fields": [{"name": "feature", "type": "string"}]}
_DRIVER_V2 = {**_DRIVER, "fields": [*_DRIVER["fields"], {"name": "weight", "type": "double"}]}

# (reader, writer) pairs, compatible and not, covering each rule the explanations speak of.
PAIRS = [
    (record(ID, AMOUNT), record(ID, AMOUNT)),
    (record(ID, AMOUNT, {"name": "c", "type": "string", "default": "EUR"}), record(ID, AMOUNT)),
    (record(ID, AMOUNT, {"name": "mcc", "type": "int"}), record(ID, AMOUNT)),
    (record(ID), record(ID, AMOUNT)),
    (record(ID, AMOUNT), record(ID)),
    *[
        (record({"name": "x", "type": r}), record({"name": "x", "type": w}))
        for w, r in [
            ("int", "long"),
            ("int", "double"),
            ("float", "double"),
            ("string", "bytes"),
            ("long", "int"),
            ("double", "string"),
            ("boolean", "int"),
        ]
    ],
    (
        record({"name": "n", "type": ["null", "string"], "default": None}),
        record({"name": "n", "type": "string"}),
    ),
    (
        record({"name": "n", "type": "string"}),
        record({"name": "n", "type": ["null", "string"], "default": None}),
    ),
    (record(AMOUNT, name="Payment"), record(AMOUNT, name="Txn")),
    (
        json.dumps({**json.loads(record(AMOUNT, name="Payment")), "aliases": ["Txn"]}),
        record(AMOUNT, name="Txn"),
    ),
    (
        record({"name": "d", "type": {"type": "array", "items": _DRIVER_V2}}),
        record({"name": "d", "type": {"type": "array", "items": _DRIVER}}),
    ),
    (
        record({"name": "d", "type": {"type": "array", "items": _DRIVER}}),
        record({"name": "d", "type": {"type": "array", "items": _DRIVER_V2}}),
    ),
    (_enum_record("POS"), _enum_record("POS", "WEB")),
    (_enum_record("POS", "OTHER", default="OTHER"), _enum_record("POS", "WEB")),
    *[(load_schema_str(c), load_schema_str(c)) for c in Contract],
]


@pytest.mark.parametrize(("reader", "writer"), PAIRS)
def test_the_explanations_agree_with_the_avro_librarys_verdict(reader: str, writer: str) -> None:
    qualified = json.dumps(compatibility._qualify_aliases(json.loads(reader)))
    library = ReaderWriterCompatibilityChecker().get_compatibility(parse(qualified), parse(writer))
    resolver = compatibility._Resolver("the reader", "the writer")
    resolver.check(json.loads(reader), json.loads(writer), "")
    compatible = library.compatibility is SchemaCompatibilityType.compatible
    assert compatible == (not resolver.problems), (library.messages, resolver.problems)
