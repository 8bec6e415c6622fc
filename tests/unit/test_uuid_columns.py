"""UUID text ↔ bytes for whole columns, checked against the `uuid` module."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from fraudpipe.uuid_columns import format_uuid_text, parse_uuid_text

pytestmark = pytest.mark.unit


def _matrix(texts: list[str]) -> np.ndarray:
    return np.frombuffer("".join(texts).encode("ascii"), np.uint8).reshape(len(texts), 36)


def test_parse_and_format_agree_with_the_uuid_module() -> None:
    ids = [uuid.uuid4() for _ in range(200)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    texts = [str(u) for u in ids]
    texts[0] = texts[0].upper()  # either case parses

    raw, ok = parse_uuid_text(_matrix(texts))

    assert ok.all()
    assert [bytes(r) for r in raw] == [u.bytes for u in ids]
    back = format_uuid_text(raw)
    assert [bytes(r).decode() for r in back] == [str(u) for u in ids]


#: A fixed id: the parameters name the tests, which every xdist worker must collect alike.
_ID = "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a6b"


@pytest.mark.parametrize(
    "text",
    [
        "g" + _ID[1:],  # not hex
        _ID.replace("-", "_"),  # wrong separators
        "x" * 36,
        " " + _ID[1:],
    ],
)
def test_non_canonical_text_is_flagged(text: str) -> None:
    good = str(uuid.uuid4())
    _, ok = parse_uuid_text(_matrix([good, text, good]))
    assert ok.tolist() == [True, False, True]
