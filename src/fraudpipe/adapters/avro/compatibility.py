"""Whether one Avro schema can read data written with another, and if not why, in words a
reviewer can act on.

The verdict is the Avro project's own: `avro.compatibility.ReaderWriterCompatibilityChecker`.
Its explanations are not enough to act on, so the words are this module's. The library gives
the place of a problem as a JSON pointer into the reader schema (``/fields/1/type/items/fields/0
/type`` where a reviewer needs ``top_drivers[].feature``); with several problems it returns the
messages and the pointers as two unordered sets, so which message belongs to which field is
lost; a missing default is reported as the bare field name; and nothing says which version
wrote what or what would fix it. Apicurio's compatibility-test endpoint is no better: it answers
a bare ``{"is_compatible": false}`` even when asked to be verbose.

So `_Resolver` walks both schemas by the specification's resolution rules and names each field
that does not resolve, what changed and what to do; it speaks only once the library said
"incompatible", and the library's own messages stand in should it find nothing to say
(`tests/unit/test_avro_compatibility.py` checks that the two agree on every case it tries).
"""

from __future__ import annotations

import json
from typing import Any, Final

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse

#: Writer type -> reader types it resolves to (Avro 1.11 spec, "Schema Resolution").
_PROMOTIONS: Final[dict[str, frozenset[str]]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_PRIMITIVES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
_NAMED: Final = frozenset({"record", "error", "enum", "fixed"})

#: How each compatibility level pairs the new schema with registered versions:
#: (versions it is checked against, whether new must read old, whether old must read new).
LEVELS: Final[dict[str, tuple[str, bool, bool]]] = {
    "NONE": ("none", False, False),
    "BACKWARD": ("latest", True, False),
    "BACKWARD_TRANSITIVE": ("all", True, False),
    "FORWARD": ("latest", False, True),
    "FORWARD_TRANSITIVE": ("all", False, True),
    "FULL": ("latest", True, True),
    "FULL_TRANSITIVE": ("all", True, True),
}


class _Names:
    """Named types (records, enums, fixed) seen while walking one schema, by full name."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}

    def resolve(self, schema: Any, namespace: str) -> Any:
        """The schema with a bare type name replaced by the definition it refers to."""
        if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
            return schema["type"]  # {"type": "long", "logicalType": ...} resolves as long
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            full = schema if "." in schema or not namespace else f"{namespace}.{schema}"
            return self.types.get(full, self.types.get(schema, schema))
        if isinstance(schema, dict) and schema.get("type") in _NAMED:
            self.types[_full_name(schema, namespace)] = schema
        return schema


def _full_name(schema: dict[str, Any], namespace: str) -> str:
    name = str(schema.get("name", ""))
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _describe(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union [" + ", ".join(_describe(s) for s in schema) + "]"
    kind = schema.get("type")
    if kind in _NAMED:
        return f"{kind} {_short(str(schema.get('name')))}"
    if kind == "array":
        return f"array of {_describe(schema.get('items'))}"
    if kind == "map":
        return f"map of {_describe(schema.get('values'))}"
    return str(kind)


class _Resolver:
    """Walks a reader and a writer schema together, collecting what does not resolve."""

    def __init__(self, reader_label: str, writer_label: str) -> None:
        self.reader_label = reader_label
        self.writer_label = writer_label
        self.reader_names = _Names()
        self.writer_names = _Names()
        self.problems: dict[str, str] = {}
        """Field path ("" for the top level) -> why it does not resolve (first reason only)."""

    def _report(self, path: str, message: str) -> None:
        self.problems.setdefault(path, message)

    def check(self, reader: Any, writer: Any, path: str, r_ns: str = "", w_ns: str = "") -> bool:
        """Record why `writer` data cannot be read as `reader`; True when it can."""
        reader = self.reader_names.resolve(reader, r_ns)
        writer = self.writer_names.resolve(writer, w_ns)
        if isinstance(writer, list):
            return all(self.check(reader, branch, path, r_ns, w_ns) for branch in writer)
        if isinstance(reader, list):
            return self._reader_union(reader, writer, path, r_ns, w_ns)
        r_kind = reader if isinstance(reader, str) else reader.get("type")
        w_kind = writer if isinstance(writer, str) else writer.get("type")
        if r_kind in _PRIMITIVES and w_kind in _PRIMITIVES:
            if r_kind == w_kind or r_kind in _PROMOTIONS.get(w_kind, frozenset()):
                return True
            return self._type_changed(reader, writer, path)
        if r_kind != w_kind and not {r_kind, w_kind} <= {"record", "error"}:
            return self._type_changed(reader, writer, path)
        if r_kind in ("record", "error"):
            return self._record(reader, writer, path, r_ns, w_ns)
        if r_kind == "enum":
            return self._enum(reader, writer, path)
        if r_kind == "fixed":
            if reader.get("size") != writer.get("size") or not self._same_name(reader, writer):
                return self._type_changed(reader, writer, path)
            return True
        if r_kind == "array":
            return self.check(reader["items"], writer["items"], f"{path}[]", r_ns, w_ns)
        if r_kind == "map":
            return self.check(reader["values"], writer["values"], f"{path}{{}}", r_ns, w_ns)
        return self._type_changed(reader, writer, path)

    def _reader_union(
        self, reader: list[Any], writer: Any, path: str, r_ns: str, w_ns: str
    ) -> bool:
        for branch in reader:
            trial = _Resolver(self.reader_label, self.writer_label)
            trial.reader_names, trial.writer_names = self.reader_names, self.writer_names
            if trial.check(branch, writer, path, r_ns, w_ns):
                return True
        self._report(
            path,
            f"{self._where(path)}: {_describe(writer)} in {self.writer_label} matches no branch "
            f"of {_describe(reader)} in {self.reader_label}",
        )
        return False

    def _record(
        self, reader: dict[str, Any], writer: dict[str, Any], path: str, r_ns: str, w_ns: str
    ) -> bool:
        if not self._same_name(reader, writer):
            self._report(
                path,
                f"{self._where(path)}: record {_short(str(writer.get('name')))} in "
                f"{self.writer_label} is named {_short(str(reader.get('name')))} in "
                f"{self.reader_label} (keep the name, or list the old one in `aliases`)",
            )
            return False
        r_ns = _full_name(reader, r_ns).rpartition(".")[0]
        w_ns = _full_name(writer, w_ns).rpartition(".")[0]
        written = {f["name"]: f for f in writer.get("fields", [])}
        ok = True
        for field in reader.get("fields", []):
            names = [field["name"], *field.get("aliases", [])]
            source = next((written[n] for n in names if n in written), None)
            field_path = f"{path}.{field['name']}" if path else field["name"]
            if source is not None:
                ok &= self.check(field["type"], source["type"], field_path, r_ns, w_ns)
            elif "default" not in field:
                self._report(
                    field_path,
                    f"field '{field_path}' ({_describe(field['type'])}) is in "
                    f"{self.reader_label} without a default, and {self.writer_label} does not "
                    f"have it, so readers on {self.reader_label} cannot fill it: a field may only "
                    "be added or removed when it has a default",
                )
                ok = False
        return ok

    def _enum(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> bool:
        if not self._same_name(reader, writer):
            return self._type_changed(reader, writer, path)
        missing = [s for s in writer.get("symbols", []) if s not in reader.get("symbols", [])]
        if missing and "default" not in reader:
            self._report(
                path,
                f"{self._where(path)}: symbols {missing} of {self.writer_label} are not in "
                f"{self.reader_label}, which has no enum default to map them to",
            )
            return False
        return True

    def _same_name(self, reader: dict[str, Any], writer: dict[str, Any]) -> bool:
        w_name = _short(str(writer.get("name")))
        aliases = {_short(a) for a in reader.get("aliases", [])}
        return w_name == _short(str(reader.get("name"))) or w_name in aliases

    def _type_changed(self, reader: Any, writer: Any, path: str) -> bool:
        self._report(
            path,
            f"{self._where(path)} is {_describe(writer)} in {self.writer_label} but "
            f"{_describe(reader)} in {self.reader_label}: Avro cannot convert one to the other",
        )
        return False

    @staticmethod
    def _where(path: str) -> str:
        return f"field '{path}'" if path else "the top-level type"


def _qualify_aliases(schema: Any, namespace: str = "") -> Any:
    """The schema with each named type's aliases written in full.

    The specification reads an alias without a dot in the namespace of its type, as the
    registry's Java implementation does; the Python library compares aliases as written, so
    ``"aliases": ["Txn"]`` on ``t.Payment`` would not match the writer's ``t.Txn`` there.
    """
    if isinstance(schema, list):
        return [_qualify_aliases(branch, namespace) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = schema.get("type")
    if kind in _NAMED:
        namespace = _full_name(schema, namespace).rpartition(".")[0]
        if "aliases" in schema:
            out["aliases"] = [
                a if "." in a or not namespace else f"{namespace}.{a}" for a in schema["aliases"]
            ]
        if "fields" in schema:
            out["fields"] = [
                {**f, "type": _qualify_aliases(f["type"], namespace)} for f in schema["fields"]
            ]
    elif kind in ("array", "map"):
        key = "items" if kind == "array" else "values"
        out[key] = _qualify_aliases(schema[key], namespace)
    elif isinstance(kind, (dict, list)):
        out["type"] = _qualify_aliases(kind, namespace)
    return out


def unreadable_fields(
    reader: str, writer: str, *, reader_label: str = "the reader", writer_label: str = "the writer"
) -> dict[str, str]:
    """Why data written with `writer` cannot be read with `reader`, by field (empty when it can).

    Empty exactly when the Avro library's checker finds the pair compatible.

    Args:
        reader: Reader schema (Avro JSON text).
        writer: Writer schema (Avro JSON text).
        reader_label: How messages should name the reader schema, e.g. "the local .avsc".
        writer_label: How messages should name the writer schema, e.g. "registered version 2".

    Returns:
        Field path (`amount`, `top_drivers[].feature`; "" for the top level) -> one sentence
        naming the field, what changed and what to do.
    """
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    verdict = checker.get_compatibility(
        parse(json.dumps(_qualify_aliases(json.loads(reader)))), parse(writer)
    )
    if verdict.compatibility is SchemaCompatibilityType.compatible:
        return {}
    resolver = _Resolver(reader_label, writer_label)
    resolver.check(json.loads(reader), json.loads(writer), "")
    if resolver.problems:
        return resolver.problems
    where = ", ".join(sorted(verdict.locations))
    return {
        "": f"{writer_label} cannot be read as {reader_label}: "
        + "; ".join(sorted(verdict.messages))
        + f" (at {where})"
    }


def why_unreadable(
    reader: str, writer: str, *, reader_label: str = "the reader", writer_label: str = "the writer"
) -> list[str]:
    """Why data written with `writer` cannot be read with `reader` (empty when it can).

    The sentences of `unreadable_fields`, one per field.
    """
    return list(
        unreadable_fields(
            reader, writer, reader_label=reader_label, writer_label=writer_label
        ).values()
    )
