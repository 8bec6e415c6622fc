"""Prefect flow `import-labels`: add a label file's labels (chargebacks, analysts' decisions).

Only wiring: the work is `fraudpipe.labels.import_labels`. A file that cannot be taken fails
the flow run with the reason; bad rows do not (they are quarantined). Re-running adds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from fraudpipe.config import get_settings
from fraudpipe.labels import import_labels
from fraudpipe.logs import configure_logging


@flow(name="import-labels", flow_run_name="import-labels-{path}")
def import_labels_flow(path: str) -> dict[str, Any]:
    """Import the label file at `path` (on the worker's file system).

    Returns:
        The file's rows, the labels added, those already known, and the rows quarantined.
    """
    configure_logging(json=True)
    result = import_labels(get_settings(), Path(path))
    summary = {
        "path": str(result.path),
        "rows": result.rows,
        "added": result.added,
        "already_known": result.already_known,
        "quarantined": result.quarantined,
    }
    get_run_logger().info("import-labels: %s", summary)
    return summary


if __name__ == "__main__":
    import sys

    import_labels_flow(sys.argv[1])
