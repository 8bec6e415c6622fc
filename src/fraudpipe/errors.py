"""Errors with names: each says what failed and what to do about it.

They turn into exit codes (CLI), failed task states (Prefect/Airflow) or DLQ headers (consumer)
only at the edges.
"""

from __future__ import annotations

from pathlib import Path


class FraudpipeError(Exception):
    """Root of every error fraudpipe raises on purpose."""


class ConfigurationError(FraudpipeError):
    """A setting is missing or wrong."""


class ServiceUnavailableError(FraudpipeError):
    """A service could not be reached."""

    def __init__(self, service: str, url: str, hint: str = "run `make stack-up`") -> None:
        super().__init__(f"{service} not reachable at {url}: {hint}")
        self.service = service
        self.url = url


class StackError(FraudpipeError):
    """The local stack could not install, start or stop a service."""

    def __init__(self, service: str, problem: str, log_file: Path | None = None) -> None:
        where = f" (see {log_file})" if log_file else ""
        super().__init__(f"{service}: {problem}{where}")
        self.service = service
        self.log_file = log_file
