"""Prefect flow `publish-batch`: send one loaded batch to Kafka, then mark it published.

Only wiring: the work is `fraudpipe.publish.publish_batch`. A failed send fails the
flow run (and so the Airflow task waiting on it) and leaves the batch `loaded` for a re-run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from fraudpipe.config import get_settings
from fraudpipe.logs import configure_logging
from fraudpipe.publish import publish_batch


def publish_run_name() -> str:
    """`publish-ulb-2025-09-20` for batch `ulb:2025-09-20`; `publish-oldest-loaded` without one."""
    batch_id = flow_run.parameters.get("batch_id")
    return f"publish-{batch_id.replace(':', '-')}" if batch_id else "publish-oldest-loaded"


@flow(name="publish-batch", flow_run_name=publish_run_name)
def publish_batch_flow(batch_id: str | None = None) -> dict[str, Any]:
    """Publish `batch_id` (default: the oldest loaded batch) to the transactions topic.

    Args:
        batch_id: `<source>:<YYYY-MM-DD>`, or None for the oldest loaded batch.

    Returns:
        The batch, its status afterwards, records sent and acknowledged, and the rate.
    """
    configure_logging(json=True)
    result = publish_batch(get_settings(), batch_id)
    summary = {
        "batch_id": result.batch_id,
        "status": result.status,
        "topic": result.topic,
        "records": result.records,
        "acknowledged": result.acknowledged,
        "seconds": round(result.seconds, 3),
        "records_per_second": round(result.records_per_second),
    }
    get_run_logger().info("publish-batch: %s", summary)
    return summary


if __name__ == "__main__":
    publish_batch_flow()
