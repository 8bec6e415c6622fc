"""`fraudpipe dashboard`: become the Streamlit server of the dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings


@domain_errors
def dashboard_cmd(
    port: Annotated[
        int | None, typer.Option("--port", min=1, help="Port (default: settings.dashboard_port).")
    ] = None,
    address: Annotated[
        str, typer.Option("--address", help="Interface to listen on (loopback by default).")
    ] = "127.0.0.1",
) -> None:
    """Serve the Streamlit dashboard (reads PostgreSQL as the read-only role, and MLflow)."""
    import os

    from fraudpipe.dashboard.access import require_login_beyond_loopback
    from fraudpipe.dashboard.launch import streamlit_command

    settings = get_settings()
    require_login_beyond_loopback(settings, address)
    port = port or settings.dashboard_port
    command = streamlit_command(address, port)
    console.print(f"dashboard: http://{address}:{port}")
    console.file.flush()  # exec discards unflushed output
    # Become the Streamlit server (exec, not a child), so a signal to this process stops it.
    os.execv(command[0], command)  # noqa: S606  # fixed argv, no shell
