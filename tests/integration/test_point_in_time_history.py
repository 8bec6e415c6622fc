"""Training history as of a cut, against the real database: only events older than the label
delay, each with its latest label known at the cut, and the same rows on every re-read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from model_frames import store_transactions, synthetic_history

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.adapters.postgres.history import read_labelled_history
from fraudpipe.adapters.postgres.labels import add_labels
from fraudpipe.columns import LABEL_COLUMN
from fraudpipe.config import Settings
from fraudpipe.model.point_in_time import LabelCut
from fraudpipe.model.training import training_set_digest

pytestmark = pytest.mark.integration

SOURCE = "point-in-time-test"
#: Two days from 2025-09-20; with a one-day delay, the events before 09-21 12:00 are mature.
CUT = LabelCut(datetime(2025, 9, 22, 12, 0, tzinfo=UTC), timedelta(days=1))


def _id(position: int) -> str:
    # store_transactions' ids.
    return str(
        uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "fraudpipe-tests"), f"{SOURCE}:{position}")
    )


def _at(frame: pd.DataFrame, position: int, after: timedelta) -> datetime:
    event = datetime.fromtimestamp(frame["event_time"].iat[position] / 1000, tz=UTC)
    return event + after


def _label(
    frame: pd.DataFrame, position: int, is_fraud: bool, source: str, after: timedelta
) -> dict[str, object]:
    return {
        "transaction_id": _id(position),
        "is_fraud": is_fraud,
        "source": source,
        "labelled_by": "visa-feed" if source == "chargeback" else "ana",
        "known_at": pd.Timestamp(_at(frame, position, after)),
        "note": None,
    }


def _add(settings: Settings, rows: list[dict[str, object]]) -> None:
    with connect(settings) as conn:
        add_labels(conn, pd.DataFrame(rows))
        conn.commit()


@pytest.fixture(scope="module")
def stored(fresh_db: Settings) -> tuple[Settings, pd.DataFrame]:
    """Two days of rows; every 10th row has no label from the source."""
    frame = synthetic_history(days=2, rows_per_day=150, fraud_rate=0.05, seed=11)
    return fresh_db, store_transactions(fresh_db, frame, SOURCE, unlabelled_every=10)


def _first_labelled(frame: pd.DataFrame, mature: bool, labelled: bool, skip: int = 0) -> int:
    limit = int(CUT.mature_before.timestamp() * 1000)
    young = frame["event_time"].to_numpy() >= limit
    has = frame["stored_label"].notna().to_numpy()
    candidates = np.flatnonzero((young != mature) & (has == labelled))
    return int(candidates[skip])


def test_the_history_as_of_a_cut_holds_mature_events_with_the_labels_known_then(
    stored: tuple[Settings, pd.DataFrame],
) -> None:
    settings, frame = stored
    overruled = _first_labelled(frame, mature=True, labelled=True, skip=0)
    outlived = _first_labelled(frame, mature=True, labelled=True, skip=1)
    too_late = _first_labelled(frame, mature=True, labelled=True, skip=2)
    decided = _first_labelled(frame, mature=True, labelled=False)
    young = _first_labelled(frame, mature=False, labelled=False)
    source_label = {p: bool(frame["stored_label"].iat[p]) for p in (overruled, outlived, too_late)}
    _add(
        settings,
        [
            # A chargeback after the source label (known a day after the event) overrules it.
            _label(
                frame,
                overruled,
                not source_label[overruled],
                "chargeback",
                timedelta(days=1, hours=2),
            ),
            # An analyst's decision an hour after the event is outlived by the source label.
            _label(frame, outlived, not source_label[outlived], "analyst", timedelta(hours=1)),
            # A label known after the cut is not known at the cut.
            _label(frame, too_late, not source_label[too_late], "chargeback", timedelta(days=9)),
            # A mature row without a source label, labelled by an analyst before the cut.
            _label(frame, decided, True, "analyst", timedelta(hours=3)),
            # A young row stays out, labelled or not.
            _label(frame, young, True, "analyst", timedelta(minutes=30)),
        ],
    )

    history = read_labelled_history(settings, CUT)

    limit = int(CUT.mature_before.timestamp() * 1000)
    mature = frame[frame["event_time"] < limit]
    expected = mature["stored_label"].copy()
    expected.iat[mature.index.get_loc(overruled)] = int(not source_label[overruled])
    expected.iat[mature.index.get_loc(decided)] = 1
    expected = expected.dropna().astype("int64")
    assert len(history) == len(expected) > 0
    assert history["event_time"].max() < limit
    by_time = history.set_index("event_time")[LABEL_COLUMN]
    times = frame["event_time"]
    assert by_time[times.iat[overruled]] == int(not source_label[overruled])
    assert by_time[times.iat[outlived]] == int(source_label[outlived])
    assert by_time[times.iat[too_late]] == int(source_label[too_late])
    assert by_time[times.iat[decided]] == 1
    assert times.iat[young] not in by_time.index
    assert int(history[LABEL_COLUMN].sum()) == int(expected.sum())


def test_a_re_read_for_the_same_cut_is_the_same_training_set(
    stored: tuple[Settings, pd.DataFrame],
) -> None:
    settings, frame = stored
    before = training_set_digest(read_labelled_history(settings, CUT))
    # Knowledge that arrives later, about a mature row, cannot change a past cut's rows.
    later = _first_labelled(frame, mature=True, labelled=True, skip=5)
    _add(settings, [_label(frame, later, True, "chargeback", timedelta(days=30))])

    again = read_labelled_history(settings, CUT)

    assert training_set_digest(again) == before
    assert (
        training_set_digest(read_labelled_history(settings, LabelCut.now(CUT.label_delay)))
        != before
    )
