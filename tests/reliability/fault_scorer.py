"""A scorer that kills itself (SIGKILL) at the Nth pass of a named fault point.

Run by the fault tests as ``python tests/reliability/fault_scorer.py POINT N``: the settings
come from the environment, as for ``python -m consumers.scorer``. A crash at a point in the
middle of a micro-batch (its PostgreSQL commit done, its Kafka transaction open) is then
deterministic instead of a matter of timing.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from fraudpipe.config import get_settings
from fraudpipe.logs import configure_logging
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import run_scorer


def main(point: str, nth: int) -> None:
    passes = 0

    def fault(name: str) -> None:
        nonlocal passes
        if name == point:
            passes += 1
            if passes == nth:
                # librdkafka's own threads send the queued records meanwhile (linger 0): the
                # kill then finds them on the broker, in the open transaction.
                time.sleep(1.0)
                os.kill(os.getpid(), signal.SIGKILL)

    configure_logging(json=True)
    options = ScoringOptions(batch_size=300, idle_exit_s=30.0, fault=fault)
    run_scorer(get_settings(), options)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
