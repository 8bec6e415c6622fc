"""`fraudpipe serve`: the synchronous scoring API."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings


@domain_errors
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Interface (default: settings.api_host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, help="Port (default: settings.api_port).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, help="Processes (default: settings.api_workers)."),
    ] = None,
) -> None:
    """Serve POST /v1/score and /v1/score/batch with the verified champion (keys: X-API-Key)."""
    from fraudpipe.serving.server import serve

    settings = get_settings()
    host = host or settings.api_host
    port = port or settings.api_port
    console.print(f"scoring API: http://{host}:{port} (docs at /docs)")
    json_logs = bool(ctx.parent is not None and ctx.parent.params.get("json_logs"))
    serve(settings, host, port, workers or settings.api_workers, json_logs=json_logs)
