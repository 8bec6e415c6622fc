"""`fraudpipe train` and `fraudpipe models`: training, and the registered versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings


class ModelKindChoice(StrEnum):
    logreg = "logreg"
    hgb = "hgb"


ModelKindOption = Annotated[
    ModelKindChoice,
    typer.Option("--model", help="logreg (default) or hgb, the HistGradientBoosting challenger."),
]


@domain_errors
def train_cmd(
    model: ModelKindOption = ModelKindChoice.logreg,
    sample: Annotated[
        float | None,
        typer.Option(
            "--sample",
            min=0.0,
            max=1.0,
            help="Train on this stratified fraction of the training window (holdout untouched).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 42,
    holdout_days: Annotated[
        int | None,
        typer.Option(min=1, help="Latest days held out (default: settings.holdout_days)."),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(help="Train from a ULB-format CSV instead of the database."),
    ] = None,
    register: Annotated[
        bool, typer.Option(help="Log, register and gate the model in MLflow.")
    ] = True,
    cut: Annotated[
        str | None,
        typer.Option(
            help="Train as of this moment (ISO 8601 with its UTC offset): events older than "
            "the label delay, labels known then. Default: now.",
            callback=lambda value: _moment(value) and value,
        ),
    ] = None,
) -> None:
    """Train on labelled history, evaluate on the latest days, register, and gate promotion."""
    from rich.progress import Progress

    from fraudpipe.adapters.postgres.history import read_labelled_history
    from fraudpipe.model.point_in_time import LabelCut
    from fraudpipe.model.thresholds import rule_from
    from fraudpipe.model.training import TrainingConfig, train_model
    from fraudpipe.retrain import retrain
    from fraudpipe.retrain.ulb_history import history_from_ulb_csv

    settings = get_settings()
    delay = timedelta(days=settings.label_delay_days)
    as_of = None if csv else LabelCut(_moment(cut) or datetime.now(UTC), delay)
    with console.status("loading labelled history ..."):
        history = history_from_ulb_csv(csv) if csv else read_labelled_history(settings, as_of)
    config = TrainingConfig(
        model="hgb" if model is ModelKindChoice.hgb else "logreg",
        seed=seed,
        holdout_days=holdout_days or settings.holdout_days,
        threshold_rule=rule_from(settings),
        train_sample=sample or None,
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("searching", total=None)

        def report(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        if register:
            outcome = retrain(history, config, settings, on_progress=report, cut=as_of)
            result, registered = outcome.result, outcome.registered
        else:
            result = train_model(history, config, on_progress=report, cut=as_of)
            registered = None

    if result is not None:
        c = result.chosen
        console.print(
            f"{model.value}: imbalance={c.imbalance} hour={'on' if c.use_hour else 'off'} "
            f"strength={c.strength:g} threshold={result.threshold:.4g} "
            f"(search {result.search_seconds:.1f} s, final fit {result.fit_seconds:.1f} s)"
        )
        print_holdout(result.holdout_metrics.as_dict())
    elif registered is not None:
        # An identical earlier training was found: show the metrics it logged.
        print_holdout(registered.holdout)
    if registered is not None:
        state = "registered" if registered.newly_registered else "same data and config: reusing"
        console.print(
            f"{registered.name} {state} version {registered.version} → "
            f"[bold]{registered.alias}[/]: {registered.reason}"
        )


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no UTC offset (add Z or +00:00)")
    return moment


def print_holdout(m: dict[str, float]) -> None:
    """The holdout metrics of one training as a two-column table."""
    table = Table(title=f"holdout ({m['rows']:,.0f} rows, {m['frauds']:.0f} frauds)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, key in (
        ("average precision", "average_precision"),
        ("ROC AUC", "roc_auc"),
        ("recall @ 0.1% FPR", "recall_at_0_1pct_fpr"),
        ("recall @ 1% FPR", "recall_at_1pct_fpr"),
        ("precision @ 100", "precision_at_100"),
        ("Brier score", "brier"),
        ("threshold", "threshold"),
        ("precision at threshold", "precision"),
        ("recall at threshold", "recall"),
    ):
        table.add_row(label, f"{m[key]:.4f}")
    cm = [f"{m[k]:,.0f}" for k in ("true_negatives", "false_positives", "false_negatives")]
    table.add_row("tn / fp / fn / tp", " / ".join([*cm, f"{m['true_positives']:,.0f}"]))
    console.print(table)


@domain_errors
def models_cmd() -> None:
    """List the registered model's versions with holdout metrics, threshold and aliases."""
    from fraudpipe.adapters.mlflow.registry import list_versions

    settings = get_settings()
    versions = list_versions(settings)
    if not versions:
        console.print(f"no versions of {settings.model_name} yet: run `fraudpipe train`")
        return
    table = Table(title=f"{settings.model_name} @ {settings.mlflow_tracking_uri}")
    for col in ("version", "created (UTC)", "model", "AP", "ROC AUC", "recall@1%FPR", "threshold"):
        table.add_column(col, justify="right" if col not in ("model",) else "left")
    table.add_column("aliases")
    table.add_column("gate said")

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    for v in versions:
        aliases = ", ".join(
            f"[bold green]{a}[/]" if a == settings.serving_alias else a for a in v.aliases
        )
        table.add_row(
            str(v.version),
            f"{v.created_at:%Y-%m-%d %H:%M}",
            v.tags.get("model_kind", "?"),
            fmt(v.metric("holdout_average_precision")),
            fmt(v.metric("holdout_roc_auc")),
            fmt(v.metric("holdout_recall_at_1pct_fpr")),
            fmt(v.metric("threshold")),
            aliases or "-",
            v.tags.get("promotion_decision", "-"),
        )
    console.print(table)
