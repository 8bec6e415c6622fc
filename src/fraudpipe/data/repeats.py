"""Rows that share a key within one file: copies set aside, contradictions all set aside.

A key sent twice with the same facts is one fact exported twice: the first row stays and the
copies go. A key sent with different facts is a contradiction, and nothing in the file says which
row is right: every row of it goes. Each caller words its own reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Repeat:
    """One key found on more than one row.

    Attributes:
        key: The key's value (a tuple when the key has several columns).
        positions: The rows holding it, in file order.
        agree: Whether the rows agree on every column that must agree.
    """

    key: object
    positions: list[int]
    agree: bool

    def others(self, position: int) -> str:
        """The other positions, for a reason text."""
        return ", ".join(str(p) for p in self.positions if p != position)


#: Words the reason for one set-aside row.
Reason = Callable[[Repeat, int], str]


def set_aside_repeats(
    frame: pd.DataFrame,
    reasons: dict[int, list[str]],
    *,
    key: Sequence[str],
    agree_on: Sequence[str] | None,
    copy: Reason,
    contradiction: Reason,
) -> pd.DataFrame:
    """The frame without copies and contradictions; each set-aside row's reason is added.

    Args:
        frame: Rows indexed by their position in the file.
        reasons: Position → reasons, added to in place.
        key: The columns that name one fact.
        agree_on: The columns copies must share (None: every column).
        copy: The reason for a copy of an earlier row.
        contradiction: The reason for each row of a contradiction.
    """
    repeated = frame.duplicated(subset=list(key), keep=False)
    if not repeated.any():
        return frame
    compared = list(agree_on) if agree_on is not None else list(frame.columns)
    rejected: list[int] = []
    by = list(key) if len(key) > 1 else key[0]
    for value, group in frame[repeated].groupby(by, sort=False):
        repeat = Repeat(
            key=value,
            positions=[int(p) for p in group.index],
            agree=len(group[compared].drop_duplicates()) == 1,
        )
        for position in repeat.positions[1:] if repeat.agree else repeat.positions:
            word = copy if repeat.agree else contradiction
            reasons.setdefault(position, []).append(word(repeat, position))
            rejected.append(position)
    return frame.drop(index=rejected)
