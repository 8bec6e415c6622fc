"""The point-in-time rule's own checks, and what a training run records of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from fraudpipe.cli import app
from fraudpipe.errors import ConfigurationError
from fraudpipe.model.point_in_time import LabelCut


def test_events_are_mature_a_label_delay_before_the_cut() -> None:
    cut = LabelCut(datetime(2025, 10, 5, tzinfo=UTC), timedelta(days=7))
    assert cut.mature_before == datetime(2025, 9, 28, tzinfo=UTC)
    assert cut.as_params() == {
        "label_cut": "2025-10-05T00:00:00+00:00",
        "label_delay_days": 7.0,
        "events_before": "2025-09-28T00:00:00+00:00",
    }


def test_a_cut_needs_a_time_zone_and_a_delay_that_is_not_negative() -> None:
    with pytest.raises(ConfigurationError, match="no time zone"):
        LabelCut(datetime(2025, 10, 5), timedelta(days=7))
    with pytest.raises(ConfigurationError, match="negative"):
        LabelCut(datetime(2025, 10, 5, tzinfo=UTC), timedelta(days=-1))


@pytest.mark.parametrize(
    ("cut", "says"),
    [("2025-10-05", "no UTC offset"), ("last sunday", "not an ISO 8601 time")],
)
def test_train_refuses_a_cut_it_cannot_place(cut: str, says: str) -> None:
    result = CliRunner().invoke(app, ["train", "--cut", cut, "--no-register"])
    assert result.exit_code == 2
    assert says in result.output
