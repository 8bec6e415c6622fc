"""One ingest in its own interpreter: says it is ready, starts on a go-file, prints the outcome.

Run as a script (not through multiprocessing): spawn re-imports the parent's `__main__`, which
an earlier Streamlit AppTest in the same pytest process may have replaced with the dashboard.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fraudpipe.config import get_settings
from fraudpipe.data.files import FileSource
from fraudpipe.ingest import ingest


def main(database: str, path: str, ready: str, go: str) -> None:
    # Settings come from env / .env like any process, then the test's own database.
    settings = get_settings().model_copy(update={"pg_database": database})
    source = FileSource(Path(path))
    Path(ready).touch()
    deadline = time.monotonic() + 600
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go-file within 600 s")
        time.sleep(0.005)
    report = ingest(settings, source)
    print(report.batches[0].outcome)


if __name__ == "__main__":
    main(*sys.argv[1:5])
