"""The demo's closing summary: one table row per day, totals, what the run added, and links."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fraudpipe.config import Settings
from fraudpipe.orchestration.demo import DemoResult
from fraudpipe.orchestration.prefect_runs import prefect_ui_url
from fraudpipe.stack.api import api_address


def summary_table(result: DemoResult) -> Table:
    """Per day: source, rows, labelled frauds, flagged, caught, false alarms, model version."""
    table = Table(
        title="fraudpipe demo: one row per day",
        caption="synthetic-s7 = generated days (seed 7), -drift-<day>: drifting from that day; "
        "model = version(s) that scored the day",
        show_footer=True,
    )
    columns = ("day", "source", "rows", "frauds", "flagged", "caught", "false alarms", "model")
    totals = {
        "rows": sum(o.rows for o in result.outcomes),
        "frauds": sum(o.frauds for o in result.outcomes),
        "flagged": sum(o.flagged for o in result.outcomes),
        "caught": sum(o.caught for o in result.outcomes),
        "false alarms": sum(o.false_alarms for o in result.outcomes),
    }
    for name in columns:
        footer = f"{totals[name]:,}" if name in totals else ("total" if name == "day" else "")
        table.add_column(name, footer=footer, justify="right" if name in totals else "left")
    for o in result.outcomes:
        versions = ", ".join(f"v{v}" for v in o.model_versions) or "-"
        table.add_row(
            o.batch_date.isoformat(),
            o.source,
            f"{o.rows:,}",
            f"{o.frauds:,}",
            f"{o.flagged:,}",
            f"{o.caught:,}",
            f"{o.false_alarms:,}",
            versions,
        )
    return table


def drift_table(result: DemoResult, threshold: float) -> Table | None:
    """Per measured day and version: the score's PSI, the column that moved most, alert rates."""
    if result.drift.empty:
        return None
    table = Table(
        title="drift per day against the scoring version's training data "
        f"(PSI > {threshold:g}: drifted)"
    )
    for col in (
        "day",
        "model",
        "score PSI",
        "most moved",
        "PSI",
        "drifted columns",
        "alert rate",
        "expected",
    ):
        table.add_column(
            col,
            justify="left" if col in ("day", "model", "most moved", "drifted columns") else "right",
        )
    frame = result.alert_rates
    rates = {
        (str(b), int(v)): (float(r), float(e))
        for b, v, r, e in zip(
            frame["batch_id"].to_numpy(),
            frame["model_version"].to_numpy(),
            frame["alert_rate"].to_numpy(),
            frame["expected_alert_rate"].to_numpy(),
            strict=True,
        )
    }
    for (batch_id, version), part in result.drift.groupby(
        ["batch_id", "model_version"], sort=False
    ):
        psi = part.set_index("feature")["psi"]
        inputs = psi.drop("score", errors="ignore")
        worst = str(inputs.idxmax())
        rate = rates.get((str(batch_id), int(str(version))))
        table.add_row(
            str(part["day"].iat[0]),
            f"v{version}",
            f"{psi.get('score', float('nan')):.3f}",
            worst,
            f"{inputs[worst]:.3f}",
            ", ".join(inputs[inputs > threshold].index) or "-",
            f"{rate[0]:.3%}" if rate is not None else "-",
            f"{rate[1]:.3%}" if rate is not None else "-",
        )
    return table


def summary(result: DemoResult, settings: Settings) -> RenderableType:
    """Table, the retrain's verdict, what this run added (or that it added nothing), links."""
    lines: list[RenderableType] = [summary_table(result)]
    drift = drift_table(result, settings.drift_psi_threshold)
    if drift is not None:
        lines.append(drift)
    if result.retrain is not None:
        r = result.retrain
        verdict = "moved" if r.moved else "stayed"
        lines.append(
            Text(
                f"weekly retrain: champion {verdict} (v{r.champion_before} → v{r.champion_after});"
                f" latest version v{r.latest_version} is {r.decision or '?'}: {r.reason}"
            )
        )
    for row in result.shadow.itertuples():
        lines.append(
            Text(
                f"in shadow: v{row.challenger_version} beside champion v{row.champion_version} "
                f"on {row.scored:,} transactions, {row.labelled:,} labelled now: "
                f"{row.challenger_caught}/{row.challenger_alerts} alerts caught fraud against "
                f"the champion's {row.champion_caught}/{row.champion_alerts} "
                f"({row.frauds} frauds)"
            )
        )
    added = result.added
    if added:
        what = ", ".join(f"{n:,} {name}" for name, n in added.items())
        lines.append(Text(f"this run added {what}", style="bold"))
    else:
        a = result.after
        lines.append(
            Text(
                "this run added nothing: every day was already loaded, published and scored "
                f"({a.batches} batches, {a.transactions:,} transactions, {a.predictions:,} "
                f"predictions, {a.model_versions} model versions)",
                style="bold green",
            )
        )
    lines.append(Text(f"took {result.seconds / 60:.1f} min"))
    lines.append(Text(f"dashboard: http://127.0.0.1:{settings.dashboard_port}  (make dashboard)"))
    lines.append(Text(f"Prefect:   {prefect_ui_url(settings)}"))
    lines.append(Text(f"MLflow:    {settings.mlflow_tracking_uri}"))
    lines.append(
        Text(
            f"Airflow:   {settings.airflow_url}  "
            f"(user {settings.airflow_admin_user}, password in .env)"
        )
    )
    lines.append(
        Text(f"Prometheus: http://{settings.prometheus_host}:{settings.prometheus_port}/alerts")
    )
    if settings.api_enabled:
        lines.append(
            Text(
                f"Scoring API: http://{api_address(settings)}/docs  "
                "(X-API-Key: a key of FRAUDPIPE_API_KEYS in .env)"
            )
        )
    return Group(*lines)
