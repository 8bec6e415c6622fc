"""Run the scoring API under uvicorn, with one worker process or several.

uvicorn with uvloop and httptools (the fastest of its loops and parsers here). Several workers
share the listening socket (uvicorn's supervisor); each loads the model, runs a recorder and
answers any request. Their metrics meet in a multiprocess directory made fresh for the run
(`metrics.multiprocess_dir`), so a scrape that reaches any worker reports them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import uvicorn

from fraudpipe.config import Settings
from fraudpipe.serving.keys import ApiKeys


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn finishes the requests in flight first).

    Raises:
        ConfigurationError: No valid API keys (checked before anything starts).
    """
    ApiKeys.parse(settings.api_keys)
    directory = None
    if workers > 1:
        directory = tempfile.mkdtemp(prefix="fraudpipe-api-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        uvicorn.run(
            "fraudpipe.serving.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            timeout_graceful_shutdown=10,
            log_level="warning",
        )
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
