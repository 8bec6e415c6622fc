"""Fixtures of the fault tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from scoring_support import champion_model, exactly_once, own_settings, scoring_topics
from scratch_db import scratch_database

from fraudpipe.config import Settings


def _own_stream(stack: Settings, partitions: int) -> Iterator[Settings]:
    with scratch_database(stack, prefix="fraudpipe_test") as db:
        settings = own_settings(db, uuid.uuid4().hex[:10], partitions=partitions)
        with scoring_topics(settings), champion_model(settings, seed=3):
            yield settings


@pytest.fixture(scope="module")
def one_partition(stack: Settings) -> Iterator[Settings]:
    """A database, one-partition topics, subjects, group and champion of the module's own."""
    yield from _own_stream(stack, 1)


@pytest.fixture(scope="module")
def four_partitions_once(stack: Settings) -> Iterator[Settings]:
    """A database, four-partition topics, subjects, group and champion of the module's own,
    with the scorer's output transactions on."""
    for settings in _own_stream(stack, 4):
        yield exactly_once(settings)


@pytest.fixture(params=[True, False], ids=["exactly-once", "at-least-once"])
def four_partitions(stack: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """The same with four partitions, for several scorers in one group: one stream per test,
    with output transactions (the default) and without."""
    for settings in _own_stream(stack, 4):
        yield settings.model_copy(update={"scorer_exactly_once": request.param})
