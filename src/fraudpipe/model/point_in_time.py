"""What a training set may know at a moment: the cut, and how long labels take to arrive.

A bank learns a transaction's truth late: a chargeback comes days or weeks after the purchase.
A model trained "as of" a moment must see only what was known then, or a backtest of it
flatters it and a re-run of it gives another model.

The rule, used by the retrain and by `fraudpipe train --cut`:

- **Rows:** transactions whose event time is before ``cut - label_delay``. Younger rows are left
  out even when some of them already carry a label (a fast chargeback, an analyst's decision):
  those early labels are mostly frauds, so keeping them would teach the model a fraud rate the
  bank never sees.
- **Labels:** a row's latest label known at the cut. The source dataset's own label counts as
  known ``label_delay`` after the event; a label in the ``labels`` table counts from its
  ``known_at``. The later of the two wins (a tie goes to the ``labels`` table, which names who
  decided).

So the holdout, the last days of that frame, is the last days before the cut whose labels are
mature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fraudpipe.errors import ConfigurationError


@dataclass(frozen=True)
class LabelCut:
    """A moment to train as of, and how long after an event its dataset label is known.

    Attributes:
        cut: The moment (timezone-aware): the Airflow run's data-interval end for a weekly
            retrain.
        label_delay: How long after its event a transaction's dataset label becomes known.
    """

    cut: datetime
    label_delay: timedelta

    def __post_init__(self) -> None:
        if self.cut.tzinfo is None:
            raise ConfigurationError(f"cut {self.cut.isoformat()} has no time zone")
        if self.label_delay < timedelta(0):
            raise ConfigurationError(f"label delay {self.label_delay} is negative")

    @classmethod
    def now(cls, label_delay: timedelta) -> LabelCut:
        """Everything known at this moment."""
        return cls(datetime.now(UTC), label_delay)

    @property
    def mature_before(self) -> datetime:
        """Events before this moment have had their labels for at least ``label_delay``."""
        return self.cut - self.label_delay

    def as_params(self) -> dict[str, str | float]:
        """For a training run's record (MLflow params)."""
        return {
            "label_cut": self.cut.astimezone(UTC).isoformat(),
            "label_delay_days": self.label_delay / timedelta(days=1),
            "events_before": self.mature_before.astimezone(UTC).isoformat(),
        }
