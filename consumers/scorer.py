"""The scoring service's process entry point: ``python -m consumers.scorer [options]``.

Same service as ``fraudpipe consume``, for process managers and containers: JSON logs on
stderr, exit code 0 after a graceful stop, 1 after a named fraudpipe error.
"""

from __future__ import annotations

import argparse
import sys

import structlog

from fraudpipe.config import get_settings
from fraudpipe.errors import FraudpipeError
from fraudpipe.logs import configure_logging
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import run_scorer


def parse_options(
    argv: list[str] | None, default_metrics_port: int, metrics_addr: str = "127.0.0.1"
) -> ScoringOptions:
    """The service options from the command line."""
    parser = argparse.ArgumentParser(prog="python -m consumers.scorer", description=__doc__)
    parser.add_argument("--max-messages", type=int, help="stop after this many messages")
    parser.add_argument("--idle-exit", type=float, help="stop after this many idle seconds")
    parser.add_argument("--batch-size", type=int, default=10_000, help="messages per micro-batch")
    parser.add_argument(
        "--metrics-port", type=int, default=default_metrics_port, help="0 = no endpoint"
    )
    parser.add_argument("--model-poll", type=float, default=10.0, help="alias check interval")
    args = parser.parse_args(argv)
    return ScoringOptions(
        batch_size=args.batch_size,
        max_messages=args.max_messages,
        idle_exit_s=args.idle_exit,
        model_poll_s=args.model_poll,
        metrics_port=args.metrics_port,
        metrics_addr=metrics_addr,
    )


def main(argv: list[str] | None = None) -> int:
    """Run one scorer until it stops; returns the process exit code."""
    configure_logging(json=True)
    settings = get_settings()
    options = parse_options(argv, settings.metrics_port, settings.metrics_host)
    try:
        run_scorer(settings, options)
    except FraudpipeError as exc:
        structlog.get_logger("consumers.scorer").error("scorer failed", error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
