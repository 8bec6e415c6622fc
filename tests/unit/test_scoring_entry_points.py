"""The scorer's entry points wire options through to the service and nothing else."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudpipe.cli import app

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _entry_point() -> object:
    # `consumers/` is not an installed package: it runs from the repository root
    # (`python -m consumers.scorer`), so it is imported from there.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("consumers.scorer")


def test_the_cli_has_a_consume_command_with_its_options() -> None:
    result = CliRunner().invoke(app, ["consume", "--help"])
    assert result.exit_code == 0
    for option in ("--max-messages", "--idle-exit", "--batch-size", "--metrics-port"):
        assert option in result.output


def test_the_module_entry_point_parses_its_options() -> None:
    parse_options = _entry_point().parse_options  # type: ignore[attr-defined]
    options = parse_options(
        ["--max-messages", "500", "--idle-exit", "2.5", "--batch-size", "100", "--metrics-port",
         "0", "--model-poll", "1"],
        default_metrics_port=9108,
    )  # fmt: skip
    assert (options.max_messages, options.idle_exit_s, options.batch_size) == (500, 2.5, 100)
    assert (options.metrics_port, options.model_poll_s) == (0, 1.0)
    assert parse_options([], default_metrics_port=9108).metrics_port == 9108
