"""`fraudpipe train` and `fraudpipe models` as a user runs them, against the real MLflow server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from model_frames import DAY_ZERO_MS, synthetic_history
from typer.testing import CliRunner

from fraudpipe.adapters.mlflow.registry import delete_registered_model
from fraudpipe.cli import app, output
from fraudpipe.columns import V_COLUMNS
from fraudpipe.config import Settings, get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_settings(
    stack: Settings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    scoped = stack.model_copy(update={"model_name": f"fraud-detector-cli-{unique}"})
    monkeypatch.setenv("FRAUDPIPE_MODEL_NAME", scoped.model_name)
    get_settings.cache_clear()
    yield scoped
    get_settings.cache_clear()
    delete_registered_model(scoped)


def ulb_format_csv(path: Path) -> Path:
    """A small synthetic history written the way the ULB file is laid out."""
    frame = synthetic_history(days=2, rows_per_day=1000, fraud_rate=0.04, seed=9)
    pd.DataFrame(
        {
            "Time": (frame["event_time"] - DAY_ZERO_MS) / 1000,
            **{v.upper(): frame[v] for v in V_COLUMNS},
            "Amount": frame["amount"],
            "Class": frame["label"],
        }
    ).to_csv(path, index=False)
    return path


def test_train_registers_the_first_champion_and_models_lists_it(
    cli_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = ulb_format_csv(tmp_path / "creditcard.csv")
    monkeypatch.setattr(output.console, "width", 160)  # a wide terminal: no truncated cells
    runner = CliRunner()

    trained = runner.invoke(app, ["train", "--csv", str(csv)])
    listed = runner.invoke(app, ["models"])

    assert trained.exit_code == 0, trained.output
    assert f"{cli_settings.model_name} registered version 1" in trained.output
    assert "champion" in trained.output and "average precision" in trained.output
    assert listed.exit_code == 0, listed.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in listed.output.splitlines()]
    version_1 = next(row for row in rows if row and row[0] == "1")
    assert "logreg" in version_1
    assert version_1.count("champion") == 2  # the alias, and the gate's decision


def test_a_missing_file_is_one_clear_line_and_exit_1(
    cli_settings: Settings, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["train", "--csv", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "ULB file not found" in result.output
    assert "Traceback" not in result.output
