"""Daily ingestion: source → validate → ids → one PostgreSQL transaction per day batch.

`ingest` is the one entry point. Every day of a source becomes one batch in one transaction
(`day`); a source read whole is prepared first (`whole`), a chunked one streams into its new
batches while the rest of it is prepared (`chunked`). What a run did comes back as an
`IngestReport` (`reports`).
"""

from fraudpipe.ingest.reports import (
    BatchReport,
    BatchSummary,
    IngestProgress,
    IngestReport,
    IngestSummary,
)
from fraudpipe.ingest.run import ingest

__all__ = [
    "BatchReport",
    "BatchSummary",
    "IngestProgress",
    "IngestReport",
    "IngestSummary",
    "ingest",
]
