"""Publishing: a loaded batch from PostgreSQL to the transactions topic, acknowledged in full."""

from fraudpipe.publish.publisher import ProgressCallback, PublishResult, publish_batch

__all__ = ["ProgressCallback", "PublishResult", "publish_batch"]
