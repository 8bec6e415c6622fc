"""Dashboard page times on ~2 million predictions, next to the ceilings measured in the same run.

A throwaway database (created, migrated, seeded and dropped here) gets 2,000,000 transactions over
14 days and about as many predictions by three model versions, generated inside PostgreSQL with
``generate_series`` (`tests/dashboard_seed.py`), then ``VACUUM ANALYZE`` as autovacuum would.
Two small model versions are registered in MLflow under a bench-only name so the Models page
reads real artifacts.

For each page, with the default filters (the latest two days of data):

- queries: the core functions the page calls
  (`fraudpipe.adapters.postgres.dashboard_queries`), first call and the
  best of ``--repeat`` further calls (PostgreSQL's buffers are warm after the first);
- render: `streamlit.testing.v1.AppTest` running the page (a) on a first visit, every cache
  empty, MLflow artifacts included; (b) after the TTL caches expired (what a user waits for on
  a later visit: logged artifacts, which never change, stay cached); (c) warm (the next rerun).

Ceilings: a ``SELECT 1`` round trip (the least any query costs), one count over every prediction
(touching all rows once), and AppTest rendering a one-line script (Streamlit's own overhead).
The history queries are also timed on the full 14 days, to show how cost follows the window.

Run: ``uv run python bench/dashboard.py [--transactions N] [--keep] [--database NAME]``. Seeding
2M rows takes minutes; ``--keep`` keeps the seeded database and prints its name, and
``--database NAME`` reuses it (skipping the seeding).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from scratch_db import create_scratch_database, drop_scratch_database

from fraudpipe.adapters.mlflow import model_history
from fraudpipe.adapters.mlflow.registry import delete_registered_model
from fraudpipe.adapters.postgres import dashboard_queries
from fraudpipe.adapters.postgres.connect import create_engine
from fraudpipe.config import Settings, get_settings
from fraudpipe.data.window import DateWindow
from fraudpipe.stack.postgres import superuser_conninfo_for

ROOT = Path(__file__).resolve().parents[1]
# The seeding and model helpers are shared with the tests.
sys.path.insert(0, str(ROOT / "tests"))

from dashboard_models import register_two_versions  # noqa: E402
from dashboard_seed import SyntheticData, seed_synthetic  # noqa: E402

APP = ROOT / "dashboard" / "app.py"
PAGES = {
    "Live": "views/live.py",
    "Fraud history": "views/fraud_history.py",
    "Batches & lineage": "views/batches.py",
    "Models": "views/models.py",
    "EDA": "views/eda.py",
}
BUDGET_SECONDS = 2.0
console = Console()


@dataclass(frozen=True)
class Timing:
    first: float
    best: float


@dataclass(frozen=True)
class RenderTiming:
    first_visit: float
    after_ttl: float
    warm: float


def timed(fn: Callable[[], Any], repeat: int) -> Timing:
    started = time.perf_counter()
    fn()
    first = time.perf_counter() - started
    again = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        again.append(time.perf_counter() - started)
    return Timing(first, min(again) if again else first)


def seed(settings: Settings, transactions: int) -> None:
    console.print(f"seeding {transactions:,} transactions into {settings.pg_database} ...")
    started = time.perf_counter()
    seed_synthetic(
        settings,
        SyntheticData(
            transactions=transactions,
            days=14,
            fraud_rate=0.0017,
            unlabelled_days=1,
            versions=3,
            source="bench",
        ),
    )
    with psycopg.connect(
        superuser_conninfo_for(settings, settings.pg_database), autocommit=True
    ) as conn:
        conn.execute("VACUUM ANALYZE")
    console.print(f"seeded and analysed in {time.perf_counter() - started:,.0f} s")


def page_queries(engine: sa.Engine, settings: Settings) -> dict[str, Callable[[], Any]]:
    """What each page asks PostgreSQL and MLflow for, with the default filters."""
    extent = dashboard_queries.data_extent(engine)
    assert extent.last_event is not None, "the bench database is empty"
    window = DateWindow.latest(extent.last_event)
    newest = dashboard_queries.batches_overview(engine, window)["batch_id"].iloc[0]
    version = int(dashboard_queries.serving_history(engine, window)["model_version"].max())
    versions = model_history.versions_frame(settings)
    champion = int(versions[versions["aliases"].str.contains("champion")]["version"].iloc[0])
    run_id = str(versions.set_index("version").loc[champion, "run_id"])

    def every_page() -> None:  # app.py, before any page
        dashboard_queries.check_schema(engine)
        dashboard_queries.data_extent(engine)

    return {
        "(every page)": every_page,
        "Live": lambda: (
            dashboard_queries.scoring_activity(engine, 60),
            dashboard_queries.latest_predictions(engine, 50, True),
            dashboard_queries.latest_predictions(engine, 50, False),
        ),
        "Fraud history": lambda: dashboard_queries.fraud_by_hour(engine, window),
        "Batches & lineage": lambda: (
            dashboard_queries.batch_status_counts(engine),
            dashboard_queries.batches_overview(engine, window),
            dashboard_queries.batch_quarantine(engine, newest),
            dashboard_queries.batch_transactions(engine, newest, 0, 50),
        ),
        "Models": lambda: (
            dashboard_queries.serving_history(engine, window),
            dashboard_queries.score_bins(engine, window, version),
            # MLflow: the versions table, the run's plots, the champion's coefficients.
            model_history.versions_frame(settings),
            model_history.curve_plots(settings, run_id),
            model_history.coefficients(settings, champion),
        ),
        "EDA": lambda: (
            dashboard_queries.class_moments(engine, window),
            dashboard_queries.amount_and_hour_counts(engine, window),
        ),
    }


def full_range_queries(engine: sa.Engine) -> dict[str, Callable[[], Any]]:
    extent = dashboard_queries.data_extent(engine)
    assert extent.first_event is not None and extent.last_event is not None
    everything = DateWindow(extent.first_event.date(), extent.last_event.date())
    return {
        "Fraud history, all days": lambda: dashboard_queries.fraud_by_hour(engine, everything),
        "EDA, all days": lambda: (
            dashboard_queries.class_moments(engine, everything),
            dashboard_queries.amount_and_hour_counts(engine, everything),
        ),
    }


def expire_ttl_caches() -> None:
    """Clear the dashboard's TTL caches, as if their TTL ran out; immutable ones stay."""
    from streamlit.runtime.caching.cache_utils import CachedFunc

    immutable = {"engine", "curve_plots", "coefficients"}  # a resource and logged artifacts
    for module_name in ("loaders", "model_loaders"):
        for name, cached in vars(sys.modules[module_name]).items():
            if isinstance(cached, CachedFunc) and name not in immutable:
                cached.clear()


def render_times(settings: Settings, repeat: int) -> dict[str, RenderTiming]:
    """AppTest run of each page: first visit, after the TTLs expired, and warm."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["FRAUDPIPE_PG_DATABASE"] = settings.pg_database
    os.environ["FRAUDPIPE_MODEL_NAME"] = settings.model_name
    get_settings.cache_clear()
    at = AppTest.from_file(str(APP), default_timeout=600)
    # Import everything once (Plotly, MLflow, scikit-learn): a server pays this at start-up.
    at.run()
    for page in PAGES.values():
        at.switch_page(page).run()

    def run(page: str) -> float:
        started = time.perf_counter()
        at.switch_page(page).run()
        seconds = time.perf_counter() - started
        if at.exception or at.error:
            raise RuntimeError(f"{page}: {[e.value for e in [*at.exception, *at.error]]}")
        return seconds

    results = {}
    for name, page in PAGES.items():
        st.cache_data.clear()
        first_visit = run(page)
        expire_ttl_caches()
        after_ttl = run(page)
        warm = min(run(page) for _ in range(max(1, repeat)))
        results[name] = RenderTiming(first_visit, after_ttl, warm)
    return results


def trivial_render(repeat: int) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string("import streamlit as st\nst.title('ceiling')")
    return timed(at.run, max(1, repeat)).best


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="Keep the seeded database.")
    parser.add_argument("--database", help="Reuse this seeded database (skips seeding).")
    args = parser.parse_args()

    base = get_settings()
    if args.database:
        settings = base.model_copy(update={"pg_database": args.database})
    else:
        settings = create_scratch_database(base, prefix="fraudpipe_bench_dashboard")
    settings = settings.model_copy(
        update={"model_name": f"fraudpipe-bench-dashboard-{uuid.uuid4().hex[:8]}"}
    )
    engine = create_engine(settings, "reader")
    try:
        if not args.database:
            seed(settings, args.transactions)
        console.print("registering two model versions for the Models page ...")
        register_two_versions(settings)
        counts = dashboard_queries.read_frame(
            engine,
            "SELECT (SELECT count(*) FROM transactions) AS transactions, "
            "(SELECT count(*) FROM predictions) AS predictions",
        ).iloc[0]

        select_one = timed(lambda: dashboard_queries.read_frame(engine, "SELECT 1"), args.repeat)
        all_predictions = timed(
            lambda: dashboard_queries.read_frame(engine, "SELECT count(*) FROM predictions"),
            args.repeat,
        )
        page_sql = {n: timed(f, args.repeat) for n, f in page_queries(engine, settings).items()}
        full = {n: timed(f, 0) for n, f in full_range_queries(engine).items()}
        renders = render_times(settings, args.repeat)
        trivial = trivial_render(args.repeat)
    finally:
        engine.dispose()
        delete_registered_model(settings)
        if not args.database and not args.keep:
            drop_scratch_database(settings)

    load = os.getloadavg()
    console.print(
        f"\n{int(counts['transactions']):,} transactions, {int(counts['predictions']):,} "
        f"predictions; {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} "
        "(shared machine: other work runs alongside)"
    )
    table = Table(title="Dashboard pages (default window: latest 2 days), milliseconds")
    columns = (
        "page",
        "queries first",
        "queries best",
        "render first visit",
        "render after TTL",
        "render warm",
        "first visit ≤ 2 s",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "page" else "right")
    for name, timing in page_sql.items():
        render = renders.get(name)
        cells = (
            [
                ms(render.first_visit),
                ms(render.after_ttl),
                ms(render.warm),
                "yes" if render.first_visit <= BUDGET_SECONDS else "NO",
            ]
            if render
            else ["", "", "", ""]
        )
        table.add_row(name, ms(timing.first), ms(timing.best), *cells)
    console.print(table)

    ceilings = Table(title="Ceilings measured in the same run, milliseconds")
    ceilings.add_column("measurement")
    ceilings.add_column("best", justify="right")
    ceilings.add_row("SELECT 1 round trip (reader role)", ms(select_one.best))
    ceilings.add_row(
        f"count(*) over all {int(counts['predictions']):,} predictions", ms(all_predictions.best)
    )
    ceilings.add_row("AppTest render of a one-line script", ms(trivial))
    for name, timing in full.items():
        ceilings.add_row(f"{name} (queries, for scale)", ms(timing.first))
    console.print(ceilings)
    if args.keep and not args.database:
        console.print(f"kept database {settings.pg_database} (reuse with --database)")


if __name__ == "__main__":
    main()
