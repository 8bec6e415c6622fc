"""An analyst's decision on an alert, recorded as a label through the analyst database role.

The review queue (the dashboard) is the only writer here, and it writes as the analyst role,
which may read what an alert shows and add labels, nothing else: the dashboard's own role stays
read-only. A decision is checked by the same rules as a label file's row
(`fraudpipe.data.labels`); a bad one is refused whole, with every reason, and nothing is
written. Deciding again adds a later label (the latest wins; the earlier stays in the history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import structlog

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.adapters.postgres.labels import add_labels, unknown_transactions
from fraudpipe.config import Settings
from fraudpipe.data.labels import validate_labels
from fraudpipe.errors import ReviewDecisionError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    """What an analyst decided about one alert.

    Attributes:
        transaction_id: The alerted transaction.
        is_fraud: The analyst's verdict.
        analyst: Who decided (recorded as the label's ``labelled_by``).
        note: Why, for the next reader (optional).
    """

    transaction_id: str
    is_fraud: bool
    analyst: str
    note: str = ""


def record_decision(settings: Settings, decision: Decision, now: datetime | None = None) -> bool:
    """Add the decision as an ``analyst`` label known now; True when it was added.

    Raises:
        ReviewDecisionError: The decision breaks a label rule, or names no transaction
            fraudpipe holds (nothing is written).
        ServiceUnavailableError: PostgreSQL cannot be reached.
    """
    now = now or datetime.now(UTC)
    raw = pd.DataFrame(
        {
            "transaction_id": [decision.transaction_id],
            "label": ["fraud" if decision.is_fraud else "legitimate"],
            "source": ["analyst"],
            "labelled_by": [decision.analyst.strip()],
            "known_at": [now.isoformat()],
            "note": [decision.note.strip() or None],
        }
    )
    rows = validate_labels(raw, now)
    if rows.reasons:
        raise ReviewDecisionError(decision.transaction_id, rows.reasons[0])
    with connect(settings, "analyst") as conn, conn.transaction():
        if unknown_transactions(conn, rows.frame["transaction_id"].tolist()):
            raise ReviewDecisionError(
                decision.transaction_id, ["it is no transaction fraudpipe holds"]
            )
        added = add_labels(conn, rows.frame) == 1
    log.info(
        "alert decided",
        transaction_id=decision.transaction_id,
        is_fraud=decision.is_fraud,
        analyst=decision.analyst,
        added=added,
    )
    return added
