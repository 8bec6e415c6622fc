"""`fraudpipe` command line: thin commands that hand off to the core.

A `FraudpipeError` prints one clear line and exits 1; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from fraudpipe.config import get_settings
from fraudpipe.errors import FraudpipeError
from fraudpipe.logs import configure_logging

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(help="Credit-card fraud detection pipeline.", no_args_is_help=True)
stack_app = typer.Typer(
    help="The local service stack (PostgreSQL, Kafka, registry, MLflow, Prefect)."
)
app.add_typer(stack_app, name="stack")

console = Console()
err_console = Console(stderr=True)


def domain_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a FraudpipeError into one red line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FraudpipeError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc

    return wrapper


@app.callback()
def main(
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
) -> None:
    configure_logging(json=json_logs)


def print_status() -> None:
    from fraudpipe.stack.manager import stack_status

    table = Table(title="fraudpipe stack")
    for col in ("service", "url", "state", "version", "started by us"):
        table.add_column(col)
    all_up = True
    for st in stack_status(get_settings()):
        all_up &= st.up
        state = "[green]up[/]" if st.up else "[red]down[/]"
        table.add_row(st.name, st.url, state, st.version or "-", "yes" if st.managed else "no")
    console.print(table)
    if not all_up:
        raise typer.Exit(1)


@stack_app.command("up")
@domain_errors
def stack_up_cmd() -> None:
    """Start each service that is not already reachable and wait until it is healthy."""
    from fraudpipe.stack.manager import stack_up

    def report(name: str, started: bool) -> None:
        console.print(f"{name}: {'started' if started else 'already up'}")

    stack_up(get_settings(), on_service=report)
    print_status()


@stack_app.command("down")
@domain_errors
def stack_down_cmd() -> None:
    """Stop the services this stack started."""
    from fraudpipe.stack.manager import stack_down

    stopped = stack_down(get_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing'}")


@stack_app.command("status")
@domain_errors
def stack_status_cmd() -> None:
    """Print a table of service, URL, up/down and version (exit 1 if any is down)."""
    print_status()


# -- contracts (Avro schemas in the registry) -------------------------------------------------
contracts_app = typer.Typer(help="Avro contracts (contracts/*.avsc) in the Schema Registry.")
app.add_typer(contracts_app, name="contracts")

ContractsDirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Folder of the .avsc files (default: the repository's contracts/)."),
]


@contracts_app.command("register")
@domain_errors
def contracts_register_cmd(directory: ContractsDirOption = None) -> None:
    """Register each contract under `<topic>-value` and set the subject's compatibility."""
    from fraudpipe.adapters.avro import CONTRACTS_DIR, registry_client
    from fraudpipe.adapters.avro.registration import register_contracts

    settings = get_settings()
    with registry_client(settings) as client:
        results = register_contracts(client, settings, directory=directory or CONTRACTS_DIR)
    for r in results:
        what = "registered as" if r.registered else "unchanged,"
        level = f"{r.compatibility} (set now)" if r.compatibility_changed else r.compatibility
        console.print(
            f"{r.contract.value}: {r.subject} {what} version {r.version} (schema id "
            f"{r.schema_id}); compatibility {level}"
        )
    added = sum(r.registered for r in results)
    console.print(
        f"{added} new version(s) registered"
        if added
        else "nothing new registered: the registry already holds every local contract"
    )


@contracts_app.command("check")
@domain_errors
def contracts_check_cmd(directory: ContractsDirOption = None) -> None:
    """Compare local .avsc files with the registry; exit 1 if a change would be refused."""
    from fraudpipe.adapters.avro import CONTRACTS_DIR, registry_client
    from fraudpipe.adapters.avro.registration import check_contracts
    from fraudpipe.errors import ContractsCheckFailedError

    settings = get_settings()
    with registry_client(settings) as client:
        results = check_contracts(client, settings, directory=directory or CONTRACTS_DIR)
    for r in results:
        mark = "[red]✗[/]" if r.problems else "[green]✓[/]"
        where = (
            f" (latest version {r.latest_version}, compatibility {r.compatibility})"
            if r.latest_version
            else ""
        )
        console.print(f"{mark} {r.contract.value}: {r.subject} {r.status.value}{where}")
        for problem in r.problems:
            console.print(f"    - {problem}", highlight=False)
    failed = [r for r in results if not r.ok]
    if failed:
        raise ContractsCheckFailedError([r.subject for r in failed])


# -- Kafka topics -----------------------------------------------------------------------------
topics_app = typer.Typer(help="The pipeline's Kafka topics.")
app.add_typer(topics_app, name="topics")


@topics_app.command("ensure")
@domain_errors
def topics_ensure_cmd() -> None:
    """Create missing topics and reset drifted configs (partitions, retention, replicas)."""
    from fraudpipe.adapters.kafka.topics import ensure_topics

    table = Table(title="Kafka topics")
    for col in ("topic", "action", "partitions", "replicas", "retention", "notes"):
        table.add_column(col)
    for t in ensure_topics(get_settings()):
        changed = f" ({', '.join(t.changed_configs)})" if t.changed_configs else ""
        table.add_row(
            t.spec.name,
            f"{t.action.value}{changed}",
            str(t.partitions),
            str(t.replication_factor),
            f"{t.spec.retention_days} d",
            "; ".join(t.notes) or "-",
        )
    console.print(table)


# -- Prefect deployments and Airflow ----------------------------------------------------------
deployments_app = typer.Typer(help="Prefect deployments of the flows (prefect.yaml).")
app.add_typer(deployments_app, name="deployments")
airflow_app = typer.Typer(help="Airflow's environment and metadata database.")
app.add_typer(airflow_app, name="airflow")


@deployments_app.command("apply")
@domain_errors
def deployments_apply_cmd() -> None:
    """Create the work pool if missing, then create or update every deployment of prefect.yaml."""
    from fraudpipe.orchestration.deployments import apply_deployments

    settings = get_settings()
    with console.status("prefect deploy --all ..."):
        applied = apply_deployments(settings)
    table = Table(title=f"Prefect deployments (work pool {settings.prefect_work_pool})")
    for col in ("deployment", "entrypoint", "work pool", "id"):
        table.add_column(col)
    for d in applied:
        table.add_row(d.name, d.entrypoint, d.work_pool, d.deployment_id)
    console.print(table)


@airflow_app.command("migrate")
@domain_errors
def airflow_migrate_cmd() -> None:
    """Create or upgrade Airflow's metadata database in the stack's PostgreSQL (idempotent)."""
    from fraudpipe.orchestration.airflow_env import migrate_airflow_db

    with console.status("airflow db migrate ..."):
        last_line = migrate_airflow_db(get_settings())
    console.print(last_line, highlight=False)


@airflow_app.command("env")
@domain_errors
def airflow_env_cmd() -> None:
    """Print `export` lines for Airflow's environment (includes the metadata DB password)."""
    from fraudpipe.orchestration.airflow_env import airflow_env, export_lines

    for line in export_lines(airflow_env(get_settings())):
        typer.echo(line)


db_app = typer.Typer(help="The fraudpipe database schema (Alembic migrations).")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@domain_errors
def db_upgrade_cmd(
    revision: Annotated[str, typer.Option(help="Alembic revision to reach.")] = "head",
) -> None:
    """Apply the schema migrations as the owner role (a no-op when already at the revision)."""
    from fraudpipe.adapters.postgres.migrate import upgrade

    settings = get_settings()
    at = upgrade(settings, revision)
    console.print(f"database {settings.pg_database} is at revision {at}")


@app.command("ingest")
@domain_errors
def ingest_cmd(
    source: Annotated[
        str, typer.Option(help="`ulb`, `synthetic`, or the path of a CSV/Parquet file.")
    ],
    day: Annotated[
        str | None, typer.Option(help="Day to ingest, YYYY-MM-DD (the first one with --until).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day to ingest, YYYY-MM-DD (inclusive).")
    ] = None,
    all_days: Annotated[
        bool, typer.Option("--all-days", help="Every day the source holds (not synthetic).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic days.")] = 7,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=8,
            help="Days loaded at once, each on its own connection, so the client prepares one "
            "day while the server writes another (bench/ingest.py: 77k → 104k rows/s on 2 cores).",
        ),
    ] = 2,
) -> None:
    """Ingest days of a source into PostgreSQL: validate, quarantine bad rows, load the rest."""
    from fraudpipe.cli.progress import RichIngestProgress, ingest_progress_bar
    from fraudpipe.data.resolve import open_source, requested_days
    from fraudpipe.ingest import ingest

    settings = get_settings()
    days = requested_days(day, until, all_days)
    opened = open_source(settings, source, seed=seed)
    if opened.is_synthetic:
        console.print(f"[bold yellow]SYNTHETIC[/] data: source {opened.name}")
    with ingest_progress_bar() as bar:
        report = ingest(settings, opened, days, RichIngestProgress(bar), workers=workers)
    table = Table(title=f"ingest {report.source}" + (" [SYNTHETIC]" if report.is_synthetic else ""))
    for col in ("batch", "outcome", "status", "read", "loaded", "duplicates", "quarantined"):
        table.add_column(col)
    for b in report.batches:
        table.add_row(
            b.batch_id,
            b.outcome,
            b.status.value if b.status else "-",
            f"{b.rows_read:,}",
            f"{b.loaded:,}",
            f"{b.duplicates_skipped:,}",
            f"{b.quarantined:,}",
        )
    console.print(table)
    console.print(report.summary_line(), highlight=False)


# -- model training and registry --------------------------------------------------------------
class ModelKindChoice(StrEnum):
    logreg = "logreg"
    hgb = "hgb"


ModelKindOption = Annotated[
    ModelKindChoice,
    typer.Option("--model", help="logreg (default) or hgb, the HistGradientBoosting challenger."),
]


@app.command("train")
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
) -> None:
    """Train on labelled history, evaluate on the latest days, register, and gate promotion."""
    from rich.progress import Progress

    from fraudpipe.adapters.postgres.history import read_labelled_history
    from fraudpipe.model.training import TrainingConfig, train_model
    from fraudpipe.retrain import retrain
    from fraudpipe.retrain.ulb_history import history_from_ulb_csv

    settings = get_settings()
    with console.status("loading labelled history ..."):
        history = history_from_ulb_csv(csv) if csv else read_labelled_history(settings)
    config = TrainingConfig(
        model="hgb" if model is ModelKindChoice.hgb else "logreg",
        seed=seed,
        holdout_days=holdout_days or settings.holdout_days,
        train_sample=sample or None,
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("searching", total=None)

        def report(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        if register:
            outcome = retrain(history, config, settings, on_progress=report)
            result, registered = outcome.result, outcome.registered
        else:
            result, registered = train_model(history, config, on_progress=report), None

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


@app.command("models")
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


# -- publish (PostgreSQL batch -> Kafka) ------------------------------------------------------
@app.command("publish")
@domain_errors
def publish_cmd(
    batch_id: Annotated[
        str | None,
        typer.Option("--batch-id", help="Batch to publish (default: the oldest loaded one)."),
    ] = None,
) -> None:
    """Send a loaded batch to Kafka as Avro transactions; mark it published once all are acked."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fraudpipe.publish import publish_batch

    settings = get_settings()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        task = bar.add_task(f"publish → {settings.topic_transactions}", total=None)

        def report(acked: int, total: int) -> None:
            bar.update(task, completed=acked, total=total)

        result = publish_batch(settings, batch_id, on_progress=report)
    if result.batch_id is None:
        console.print("nothing to publish: no batch is loaded")
    elif result.status != "published" or not result.records:
        console.print(f"{result.batch_id} is already {result.status}: nothing sent")
    else:
        console.print(
            f"{result.batch_id}: {result.acknowledged:,} of {result.records:,} records "
            f"acknowledged on {result.topic} in {result.seconds:.1f} s "
            f"({result.records_per_second:,.0f}/s); batch published",
            highlight=False,
        )


# -- consume (the scoring service) --------------------------------------------------------------
@app.command("consume")
@domain_errors
def consume_cmd(
    max_messages: Annotated[
        int | None,
        typer.Option("--max-messages", min=1, help="Stop after this many messages."),
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", min=0.0, help="Stop after this many seconds without one."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Most messages per micro-batch.")
    ] = 10_000,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", min=0, help="Prometheus port (default: settings; 0 = no endpoint)."
        ),
    ] = None,
    model_poll: Annotated[
        float,
        typer.Option("--model-poll", min=0.1, help="Seconds between serving-alias checks."),
    ] = 10.0,
) -> None:
    """Run the scoring service: Kafka transactions → champion model → predictions and alerts.

    Several processes started this way share the topic's partitions (one consumer group).
    SIGTERM/SIGINT finish the current micro-batch, commit it and exit.
    """
    from fraudpipe.scoring.runtime import ScoringOptions
    from fraudpipe.scoring.service import run_scorer

    settings = get_settings()
    options = ScoringOptions(
        batch_size=batch_size,
        max_messages=max_messages,
        idle_exit_s=idle_exit,
        model_poll_s=model_poll,
        metrics_port=settings.metrics_port if metrics_port is None else metrics_port,
    )
    summary = run_scorer(settings, options)
    console.print(
        f"consumed {summary.consumed:,}, scored {summary.scored:,} "
        f"({summary.inserted:,} new predictions), dead letters {summary.dead_letters:,}; "
        f"batches scored: {', '.join(summary.batches_scored) or 'none'} ({summary.stopped_by})",
        highlight=False,
    )


@app.command("dashboard")
@domain_errors
def dashboard_cmd(
    port: Annotated[
        int | None, typer.Option("--port", min=1, help="Port (default: settings.dashboard_port).")
    ] = None,
    address: Annotated[
        str, typer.Option("--address", help="Interface to listen on (loopback by default).")
    ] = "127.0.0.1",
) -> None:
    """Serve the Streamlit dashboard (reads PostgreSQL as the read-only role, and MLflow)."""
    import os

    from fraudpipe.dashboard.launch import streamlit_command

    port = port or get_settings().dashboard_port
    command = streamlit_command(address, port)
    console.print(f"dashboard: http://{address}:{port}")
    console.file.flush()  # exec discards unflushed output
    # Become the Streamlit server (exec, not a child), so a signal to this process stops it.
    os.execv(command[0], command)  # noqa: S606  # fixed argv, no shell


@app.command("demo")
@domain_errors
def demo_cmd(
    keep_scorer: Annotated[
        bool,
        typer.Option("--keep-scorer", help="Leave the background scoring service running."),
    ] = False,
) -> None:
    """Run the whole pipeline through the Airflow DAGs: 2 ULB days, 14 synthetic days, a retrain.

    Bootstraps first (schema, topics, contracts, deployments, Airflow DB, a first model), scores
    in the background throughout, and ends with a table per day. Safe to run again: a second run
    adds nothing and says so.
    """
    from fraudpipe.cli.demo_summary import summary
    from fraudpipe.orchestration.demo import run_demo

    def say(step: str, detail: str) -> None:
        console.print(f"[bold cyan]{step}[/]: {detail}", highlight=False)

    settings = get_settings()
    result = run_demo(settings, say, keep_scorer=keep_scorer)
    # Piped to a file or CI log, rich assumes 80 columns and folds the table; print(width=)
    # cannot widen past the console's own width, so such output gets a wider console.
    out = console if console.is_terminal else Console(width=120)
    out.print(summary(result, settings))
