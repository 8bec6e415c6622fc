"""Run the scoring API under uvicorn, with its decision recorder in a process of its own.

uvicorn with uvloop and httptools (the fastest of its loops and parsers here). Several workers
share the listening socket (uvicorn's supervisor); each loads the model and answers any
request. The decision recorder (`recorder.run_recorder`) runs beside them in its own process,
so its work never holds a worker's GIL; if it stops by itself, `serve` stops too (for its
supervisor to start both again). The metrics of all of them meet in a multiprocess directory
made fresh for the run (`metrics`), so a scrape that reaches any worker reports them all.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import threading

import uvicorn

from fraudpipe.config import Settings
from fraudpipe.errors import RecorderStoppedError
from fraudpipe.serving.keys import ApiKeys
from fraudpipe.serving.recorder import run_recorder
from fraudpipe.serving.runtime import RECORDER_PID_ENV


def serve(settings: Settings, host: str, port: int, workers: int, *, json_logs: bool) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn finishes the requests in flight first).

    Raises:
        ConfigurationError: No valid API keys (checked before anything starts).
        RecorderStoppedError: The recorder ended by itself (its log says why).
    """
    ApiKeys.parse(settings.api_keys)
    directory = tempfile.mkdtemp(prefix="fraudpipe-api-metrics-")
    # Before any process that records metrics starts: each reads it at import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    recorder = multiprocessing.get_context("spawn").Process(
        target=run_recorder, args=(json_logs, os.getpid()), name="decision-recorder"
    )
    recorder.start()
    os.environ[RECORDER_PID_ENV] = str(recorder.pid)
    stopping = threading.Event()

    def watch_recorder() -> None:
        recorder.join()
        if not stopping.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful shutdown

    threading.Thread(target=watch_recorder, name="recorder-watch", daemon=True).start()
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
            # Clients reach it directly (a Service in Kubernetes does not rewrite headers).
            proxy_headers=False,
            timeout_keep_alive=settings.api_keep_alive_s,
            timeout_graceful_shutdown=10,
            log_level="warning",
        )
    finally:
        stopping.set()
        if recorder.is_alive():
            recorder.terminate()  # SIGTERM: it finishes the write in hand
            recorder.join(30)
        shutil.rmtree(directory, ignore_errors=True)
    if recorder.exitcode not in (0, -signal.SIGTERM):
        raise RecorderStoppedError(
            f"the decision recorder stopped (exit {recorder.exitcode}); see its log above"
        )
