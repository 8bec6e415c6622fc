"""Shared fixtures: settings, and the real local stack for integration/e2e tests.

Integration tests talk to real services. By default the session fixture starts the local stack
(idempotent: services already running are reused); point the FRAUDPIPE_* variables at your own
services to test against those instead.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Final

import pytest

from fraudpipe.adapters.mlflow.principals import PASSWORD_VARIABLE, USERNAME_VARIABLE, basic_auth
from fraudpipe.config import Settings, get_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The settings; and MLflow's admin as this process's login, unless code acts as another.

    The pipeline's code names its MLflow principal for each call (`acting_as`); the tests'
    own MLflow calls (setting up, tampering, cleaning up) are the admin's.
    """
    found = get_settings()
    user, password = basic_auth(found, "admin")
    os.environ.setdefault(USERNAME_VARIABLE, user)
    os.environ.setdefault(PASSWORD_VARIABLE, password)
    return found


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """The real stack, up and healthy for the whole session, with the DAGs paused and no
    supervised scorer or API: the schedules would ingest days, and a scorer consume, while tests
    count (the API's tests run their own)."""
    from fraudpipe.stack.manager import stack_up

    stack_up(
        settings.model_copy(
            update={"airflow_unpause_dags": False, "scorers": 0, "api_enabled": False}
        )
    )
    return settings


#: One stream of `make test`: the fault suite, and the end-to-end runs that drive a browser.
_FAULTS_AND_BROWSERS: Final = (
    "tests/reliability/",
    "tests/e2e/test_airflow_services.py",
    "tests/e2e/test_dashboard_browser.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Two streams for `make test`'s two pytest-xdist workers.

    The fault suite and the browser-driven end-to-end runs go to one worker, everything else
    to the other, each in the order of `testpaths`: xdist's scope scheduling, with the stream
    as the scope. The split evens their lengths (~25 min each when run alone here). They can
    run side by side because a test shares only the stack's services: each works in a
    database, topics, consumer group, model and ports of its own, and every fault is a relay
    the test cuts or a broker of its own, never a shared service stopped.
    """
    from xdist.scheduler import LoadScopeScheduling

    class Streams(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            faults = nodeid.startswith(_FAULTS_AND_BROWSERS)
            return "faults-and-browsers" if faults else "checks"

    return Streams(config, log)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topics, subjects, experiments and schemas."""
    return uuid.uuid4().hex[:10]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Destroy the Kafka clients a test left behind while the interpreter is whole.

    A client whose callbacks refer back to its owner sits in a reference cycle; left to the
    collector's last pass at interpreter exit, its librdkafka threads can call back into a
    half-finalised interpreter and crash the process after every test passed.
    """
    import gc

    gc.collect()
