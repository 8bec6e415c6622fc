"""The `model_refusals` table: which registered versions a scorer refused to serve, and why."""

from __future__ import annotations

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings

_RECORD = """
INSERT INTO model_refusals (model_name, model_version, reason, scorer)
VALUES (%s, %s, %s, %s)
ON CONFLICT (model_name, model_version) DO UPDATE
SET reason = EXCLUDED.reason, scorer = EXCLUDED.scorer,
    refusals = model_refusals.refusals + 1, last_refused_at = now()
"""


def record_refusal(settings: Settings, version: int, reason: str, scorer: str) -> None:
    """Record (or count again) one refused version of ``settings.model_name``.

    Raises:
        ServiceUnavailableError: PostgreSQL cannot be reached.
    """
    with connect(settings, "app") as conn:
        conn.execute(_RECORD, (settings.model_name, version, reason, scorer))
