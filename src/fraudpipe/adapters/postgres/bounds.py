"""The features' bounds (`fraudpipe.data.bounds`) as a CHECK constraint on `transactions`.

The last door: whatever path a row takes into the table, PostgreSQL refuses one whose amount
or V value is beyond its bounds (NaN included: PostgreSQL sorts it above every number). The
constraint depends on a setting (``FRAUDPIPE_BOUNDS_MARGIN``), so it is not a migration but is
brought in line after every `migrate.upgrade`: its name carries a digest of the bounds, so the
right one is found by name, and a changed margin replaces it. A new batch table copies it from
the parent (``LIKE transactions INCLUDING CONSTRAINTS``), which attaching the table requires.
Adding it validates every stored row; a row already beyond new, narrower bounds makes that fail
with the row's values, and nothing changes.
"""

from __future__ import annotations

import hashlib
from typing import Final

from psycopg import sql

from fraudpipe.adapters.postgres.connect import Connection
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.data.bounds import FeatureBounds

#: Every constraint this module manages has a name with this prefix.
PREFIX: Final = "transactions_features_within_"


def constraint_name(bounds: FeatureBounds) -> str:
    """``transactions_features_within_<digest of the bounds>``."""
    text = repr((bounds.low, bounds.high)).encode()
    return PREFIX + hashlib.sha256(text).hexdigest()[:12]


def check_expression(bounds: FeatureBounds) -> sql.Composed:
    """``amount BETWEEN 0.0 AND 51382.32 AND v1 BETWEEN … AND …``; floats written exactly."""
    return sql.SQL(" AND ").join(
        sql.SQL("{} BETWEEN {} AND {}").format(
            sql.Identifier(name), sql.Literal(low), sql.Literal(high)
        )
        for name, low, high in zip(FEATURE_COLUMNS, bounds.low, bounds.high, strict=True)
    )


def apply_bounds(conn: Connection, bounds: FeatureBounds) -> bool:
    """Make `transactions` hold exactly `bounds`' constraint (as its owner, in one transaction).

    Returns:
        True when the constraint was added (or replaced); False when it was already there.
    """
    wanted = constraint_name(bounds)
    with conn.transaction():
        present = {
            row[0]
            for row in conn.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'transactions'::regclass "
                "AND contype = 'c' AND conname LIKE %s",
                (PREFIX + "%",),
            )
        }
        if present == {wanted}:
            return False
        if wanted not in present:
            conn.execute(
                sql.SQL("ALTER TABLE transactions ADD CONSTRAINT {} CHECK ({})").format(
                    sql.Identifier(wanted), check_expression(bounds)
                )
            )
        for stale in sorted(present - {wanted}):
            _drop_everywhere(conn, stale)
    return True


def _drop_everywhere(conn: Connection, name: str) -> None:
    """Drop a constraint from the parent, and the copies its partitions were created with."""
    conn.execute(
        sql.SQL("ALTER TABLE transactions DROP CONSTRAINT {}").format(sql.Identifier(name))
    )
    partitions = conn.execute(
        "SELECT c.conrelid::regclass::text FROM pg_constraint c "
        "JOIN pg_inherits i ON i.inhrelid = c.conrelid "
        "WHERE i.inhparent = 'transactions'::regclass AND c.conname = %s",
        (name,),
    ).fetchall()
    for (partition,) in partitions:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(partition), sql.Identifier(name)
            )
        )
