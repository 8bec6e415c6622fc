"""The demo's closing tables: the drift table says which columns drifted on which day."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from rich.console import Console

from fraudpipe.cli.demo_summary import drift_table, summary
from fraudpipe.config import Settings
from fraudpipe.orchestration.demo import DemoResult, PipelineTotals

pytestmark = pytest.mark.unit


def test_the_drift_table_names_the_drifted_columns_and_the_alert_rates() -> None:
    totals = PipelineTotals(0, 0, 0, 0)
    result = DemoResult(before=totals, after=totals)
    assert drift_table(result, 0.2) is None
    result.drift = pd.DataFrame(
        {
            "day": [date(2025, 9, 24)] * 3,
            "batch_id": ["synthetic-s7-drift-2025-09-24:2025-09-24"] * 3,
            "model_version": [1] * 3,
            "feature": ["v4", "v11", "score"],
            "psi": [0.45, 0.31, 0.12],
            "rows": [140_000] * 3,
        }
    )
    result.alert_rates = pd.DataFrame(
        {
            "batch_id": ["synthetic-s7-drift-2025-09-24:2025-09-24"],
            "model_version": [1],
            "alert_rate": [0.004],
            "expected_alert_rate": [0.002],
        }
    )
    table = drift_table(result, 0.2)
    assert table is not None
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "v4, v11" in text and "0.450" in text and "0.400%" in text and "0.200%" in text


@pytest.mark.parametrize("enabled", [True, False])
def test_the_summary_names_the_scoring_api_when_the_stack_runs_it(
    settings: Settings, enabled: bool
) -> None:
    totals = PipelineTotals(0, 0, 0, 0)
    console = Console(width=120, record=True)
    shown = settings.model_copy(update={"api_enabled": enabled, "api_port": 8095})
    console.print(summary(DemoResult(before=totals, after=totals), shown))
    assert ("Scoring API: http://127.0.0.1:8095/docs" in console.export_text()) is enabled
