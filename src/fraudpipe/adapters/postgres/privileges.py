"""What each role may do, table by table: the app role gets only the verbs the code uses.

The pipeline's correctness rests on stored rows staying as they were loaded: a prediction is
checked against its transaction's stored content, and a transaction that is there stays there.
So `transactions` and `predictions` are append-only for the app role (no UPDATE, DELETE or
TRUNCATE, on the parent or any partition), and so are `alert_reasons`, `shadow_predictions`,
`quarantine`, `dead_letters`, `labels` (a label's history is kept: the latest known wins),
`batch_drift`, `batch_alert_rates` and `api_decisions`; only
`batches` (its status machine and counts), `model_refusals` (a refusal counted again) and
`publish_attempts` (a batch's latest attempt) are updated. Removing rows another batch already
holds from a new batch table is the owner's work, through a function (migration 0005). The
reader role only selects. The analyst role (the review queue) reads what an alert shows and
adds labels.

Applied as the owner after every `migrate.upgrade`, idempotently: a grant made by hand, or a
role created again, is brought back in line, and the default privileges cover every table the
owner creates later (a batch's partition).
"""

from __future__ import annotations

from typing import Final

from psycopg import sql

from fraudpipe.adapters.postgres.connect import Connection
from fraudpipe.config import Settings

#: The app role's rights on each table; every table not listed gets SELECT only.
APP_RIGHTS: Final[dict[str, tuple[str, ...]]] = {
    "batches": ("SELECT", "INSERT", "UPDATE"),
    "transactions": ("SELECT", "INSERT"),
    "predictions": ("SELECT", "INSERT"),
    "quarantine": ("SELECT", "INSERT"),
    "dead_letters": ("SELECT", "INSERT"),
    "model_refusals": ("SELECT", "INSERT", "UPDATE"),
    "publish_attempts": ("SELECT", "INSERT", "UPDATE"),
    "labels": ("SELECT", "INSERT"),
    "alert_reasons": ("SELECT", "INSERT"),
    "shadow_predictions": ("SELECT", "INSERT"),
    "batch_drift": ("SELECT", "INSERT"),
    "batch_alert_rates": ("SELECT", "INSERT"),
    "api_decisions": ("SELECT", "INSERT"),
}
#: What a table created later by the owner (a batch's partition) gives the app role.
APP_DEFAULT: Final = ("SELECT", "INSERT")
#: The analyst role's rights (the dashboard's review queue): what an alert shows, and adding a
#: label. No other table, and nothing on a table created later (a query through a partitioned
#: table checks the parent's rights only).
ANALYST_RIGHTS: Final[dict[str, tuple[str, ...]]] = {
    "transactions": ("SELECT",),
    "predictions": ("SELECT",),
    "alert_reasons": ("SELECT",),
    "labels": ("SELECT", "INSERT"),
}


def apply_privileges(conn: Connection, settings: Settings) -> None:
    """Set every table's rights for the app, reader and analyst roles (as the owner; one
    transaction)."""
    app = sql.Identifier(settings.pg_app_user)
    reader = sql.Identifier(settings.pg_reader_user)
    analyst = sql.Identifier(settings.pg_analyst_user)
    owner = sql.Identifier(settings.pg_owner_user)
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE ALL ON TABLES FROM {}"
            ).format(owner, app)
        )
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT {} ON TABLES TO {}"
            ).format(owner, _verbs(APP_DEFAULT), app)
        )
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}"
            ).format(owner, reader)
        )
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
            )
        ]
        partitions = {
            r[0]
            for r in conn.execute(
                "SELECT inhrelid::regclass::text FROM pg_inherits "
                "WHERE inhparent = 'transactions'::regclass"
            )
        }
        for table in tables:
            rights = APP_RIGHTS.get(table, APP_DEFAULT if table in partitions else ("SELECT",))
            name = sql.Identifier(table)
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, app))
            conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(_verbs(rights), name, app))
            conn.execute(sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(name, reader))
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(name, analyst))
            if table in ANALYST_RIGHTS:
                verbs = _verbs(ANALYST_RIGHTS[table])
                conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(verbs, name, analyst))


def _verbs(rights: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL(v) for v in rights)
