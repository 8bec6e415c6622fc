"""`fraudpipe db upgrade` and `fraudpipe ingest` from the command line, on a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from raw_files import raw_frame, write_csv
from typer.testing import CliRunner

from fraudpipe.adapters.postgres.migrate import head_revision
from fraudpipe.cli import app
from fraudpipe.config import Settings, get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_settings(fresh_db: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("FRAUDPIPE_PG_DATABASE", fresh_db.pg_database)
    get_settings.cache_clear()
    yield fresh_db
    get_settings.cache_clear()


def test_db_upgrade_says_where_the_database_is(cli_settings: Settings) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"database {cli_settings.pg_database} is at revision {head_revision()}" in result.output


def test_ingest_a_file_prints_a_summary(
    cli_settings: Settings, tmp_path: Path, unique: str
) -> None:
    frame = raw_frame(300, seconds_apart=400.0)
    frame.loc[10, "Amount"] = -5.0
    path = write_csv(frame, tmp_path / f"cli_{unique}.csv")
    result = CliRunner().invoke(app, ["ingest", "--source", str(path), "--all-days"])
    assert result.exit_code == 0, result.output
    assert (
        f"file:cli_{unique}: 2 batch(es); rows read 300, loaded 299, duplicates skipped 0, "
        "quarantined 1" in result.output.replace("\n", " ")
    )
    again = CliRunner().invoke(app, ["ingest", "--source", str(path), "--day", "2025-09-20"])
    assert again.exit_code == 0, again.output
    assert "1 already loaded: nothing to add" in again.output


def test_ingest_errors_are_one_line_and_exit_1(cli_settings: Settings, tmp_path: Path) -> None:
    path = write_csv(raw_frame(3).drop(columns="V1"), tmp_path / "bad.csv")
    result = CliRunner().invoke(app, ["ingest", "--source", str(path), "--all-days"])
    assert result.exit_code == 1
    assert "error:" in result.output and "missing V1" in result.output
    no_days = CliRunner().invoke(app, ["ingest", "--source", "ulb"])
    assert no_days.exit_code == 1
    assert "say which days" in no_days.output
