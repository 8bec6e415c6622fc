"""What every command prints with, and how a domain error ends a command: one red line, exit 1.

A `FraudpipeError` prints one clear line and exits 1; anything else is a bug and shows a
traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from fraudpipe.errors import FraudpipeError

P = ParamSpec("P")
R = TypeVar("R")


console = Console()
err_console = Console(stderr=True)


def domain_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a FraudpipeError into one red line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FraudpipeError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc

    return wrapper
