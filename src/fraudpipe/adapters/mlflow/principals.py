"""Who talks to MLflow: every request logs in (its basic-auth app) as one principal.

============  ==================================================================================
principal     rights (granted by `fraudpipe.stack.mlflow_server` at start)
============  ==================================================================================
admin         everything; creates the others and grants their rights
trainer       EDIT on experiments and registered models: logs runs, registers versions
promoter      EDIT on both, and the only one besides the admin whom `server_auth` lets move an
              alias or change a version (its tags, its description, its deletion)
reader        READ on both: the scorer and the dashboard
============  ==================================================================================

MLflow's client reads its credentials from ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` at each request, and its fluent API (`mlflow.start_run`,
`mlflow.artifacts.download_artifacts`) takes no client at all, so `acting_as` sets those two
variables for the length of a block, one block at a time in a process.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, Final, Literal, ParamSpec, TypeVar

from fraudpipe.config import Settings

MlflowPrincipal = Literal["admin", "trainer", "promoter", "reader"]
P = ParamSpec("P")
R = TypeVar("R")

USERNAME_VARIABLE: Final = "MLFLOW_TRACKING_USERNAME"
PASSWORD_VARIABLE: Final = "MLFLOW_TRACKING_PASSWORD"  # noqa: S105  # a variable's name

#: Where the MLflow server finds the admin's and the promoter's names (`server_auth`).
ADMIN_VARIABLE: Final = "FRAUDPIPE_MLFLOW_ADMIN_USER"
PROMOTER_VARIABLE: Final = "FRAUDPIPE_MLFLOW_PROMOTER_USER"

# Re-entrant: an adapter function acting as one principal may call another acting as the same
# or another one (the gate loads a version as the promoter).
_lock = threading.RLock()


def basic_auth(settings: Settings, principal: MlflowPrincipal) -> tuple[str, str]:
    """(user, password) for a plain HTTP request (`httpx`'s ``auth=``)."""
    user, password = settings.credentials("mlflow", principal)
    return user, password.get_secret_value()


@contextmanager
def acting_as(settings: Settings, principal: MlflowPrincipal) -> Iterator[None]:
    """MLflow requests inside the block log in as `principal`; the previous login after it.

    Threads of one process take turns (a lock), since the login is process-wide.
    """
    user, password = basic_auth(settings, principal)
    with _lock:
        before = os.environ.get(USERNAME_VARIABLE), os.environ.get(PASSWORD_VARIABLE)
        os.environ[USERNAME_VARIABLE] = user
        os.environ[PASSWORD_VARIABLE] = password
        try:
            yield
        finally:
            for name, value in zip((USERNAME_VARIABLE, PASSWORD_VARIABLE), before, strict=True):
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def runs_as(
    principal: MlflowPrincipal,
) -> Callable[[Callable[Concatenate[Settings, P], R]], Callable[Concatenate[Settings, P], R]]:
    """Decorate a function whose first argument is the settings: it runs `acting_as`."""

    def decorate(
        function: Callable[Concatenate[Settings, P], R],
    ) -> Callable[Concatenate[Settings, P], R]:
        @functools.wraps(function)
        def wrapper(settings: Settings, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with acting_as(settings, principal):
                return function(settings, *args, **kwargs)

        return wrapper

    return decorate
