"""The running dashboard in a real browser: `fraudpipe dashboard` serves it on a free loopback
port, headless Chromium loads every page, and each page is saved as a screenshot under
``artifacts/screenshots/``. A page fails on a Streamlit exception or error element, a "page not
found" dialog, or an empty page.

Two databases: an empty one (every page must say what is missing) and a seeded one, with two
model versions registered by the real retraining code and the scorer's own metrics endpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dashboard_models import register_two_versions
from dashboard_seed import SyntheticData, seed_synthetic
from headless_chromium import HeadlessChromium, PageState, chromium_binary
from ports import free_port
from scratch_db import scratch_database

from fraudpipe.adapters.mlflow.registry import delete_registered_model
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.scoring.metrics import MetricsServer, ScoringMetrics

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        chromium_binary() is None,
        reason="needs Debian's chromium: run `bash infra/local/bootstrap.sh`",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
FRAUDPIPE = Path(sys.executable).with_name("fraudpipe")

# url path -> the page's title; "" is the default page (Live).
PAGES = {
    "": "Live scoring",
    "history": "Fraud history",
    "batches": "Batches & lineage",
    "models": "Models",
    "eda": "Exploratory analysis",
    "review": "Review queue",
    "drift": "Drift",
    "performance": "Live performance",
}
# What each page must at least say on an empty database.
EMPTY_SAYS = {
    "": "Nothing scored yet",
    "history": "No transactions loaded yet",
    "batches": "No transactions loaded yet",
    "models": "is registered yet",
    "eda": "No transactions loaded yet",
    "review": "No open alert",
    "drift": "No batch measured yet",
    "performance": "No scored transaction has a known label yet",
}


@contextlib.contextmanager
def serving_dashboard(env: dict[str, str], log: Path, address: str = "127.0.0.1") -> Iterator[str]:
    """`fraudpipe dashboard` on a free port of `address` with `env`; yields its loopback URL."""
    port = free_port()
    with log.open("wb") as out:
        # Its own session, so the server (the CLI execs Streamlit) can be stopped as a group.
        process = subprocess.Popen(
            [str(FRAUDPIPE), "dashboard", "--port", str(port), "--address", address],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dashboard exited with {process.returncode}; see {log}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"dashboard not healthy at {url} after 180 s; see {log}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadlessChromium]:
    home = tmp_path_factory.mktemp("chromium")
    with HeadlessChromium(home / "profile", home / "chromium.log") as chromium:
        yield chromium


@pytest.fixture(scope="module")
def empty_dashboard(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("dashboard-empty")
    with scratch_database(stack, prefix="fraudpipe_test_browser") as empty:
        env = {
            "FRAUDPIPE_PG_DATABASE": empty.pg_database,
            "FRAUDPIPE_MODEL_NAME": f"dashboard-browser-none-{uuid.uuid4().hex[:8]}",
            "FRAUDPIPE_METRICS_PORT": str(free_port()),
        }
        with serving_dashboard(env, logs / "streamlit.log") as url:
            yield url


@pytest.fixture(scope="module")
def scorer_metrics() -> Iterator[MetricsServer]:
    """The scorer's own metrics endpoint, with some lag, as a running scorer would show."""
    metrics = ScoringMetrics()
    metrics.consumer_lag.labels(topic="fraud.transactions", partition="0").set(120)
    metrics.consumer_lag.labels(topic="fraud.transactions", partition="1").set(80)
    metrics.scored.inc(900)
    metrics.model_version.set(2)
    server = metrics.serve(0)
    yield server
    server.close()


@dataclass(frozen=True)
class Served:
    url: str
    settings: Settings  # the database it shows


@pytest.fixture(scope="module")
def seeded_dashboard(
    stack: Settings, scorer_metrics: MetricsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    logs = tmp_path_factory.mktemp("dashboard-seeded")
    models = stack.model_copy(update={"model_name": f"dashboard-browser-{uuid.uuid4().hex[:8]}"})
    with scratch_database(stack, prefix="fraudpipe_test_browser") as seeded:
        seed_synthetic(seeded, SyntheticData(transactions=900, days=3, unlabelled_days=1))
        try:
            register_two_versions(models)
            env = {
                "FRAUDPIPE_PG_DATABASE": seeded.pg_database,
                "FRAUDPIPE_MODEL_NAME": models.model_name,
                "FRAUDPIPE_METRICS_PORT": str(scorer_metrics.port),
                # The seed spans three days: with a day's delay, two days' labels are known,
                # so the live-performance page has something to draw.
                "FRAUDPIPE_LABEL_DELAY_DAYS": "1",
            }
            with serving_dashboard(env, logs / "streamlit.log") as url:
                yield Served(url, seeded)
        finally:
            delete_registered_model(models)


def load_and_check(
    browser: HeadlessChromium, base: str, path: str, shot: str, min_elements: int
) -> PageState:
    """Open one page, save its screenshot, and fail on errors or an empty page."""
    state = browser.open_streamlit_page(f"{base}/{path}", timeout=240)
    screenshot = SCREENSHOTS / f"{shot}.png"
    browser.screenshot(screenshot, state.height)
    assert screenshot.stat().st_size > 10_000, f"suspiciously small screenshot {screenshot}"
    assert not state.exceptions, state.exceptions
    assert not state.errors, state.errors
    assert not [d for d in state.dialogs if "not found" in d.lower()], state.dialogs
    assert state.title == PAGES[path], f"{path!r} showed {state.title!r}"
    assert state.elements >= min_elements and len(state.text) > len(state.title) + 30, (
        f"{path!r} looks empty: {state.text!r}"
    )
    return state


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_on_an_empty_database(
    browser: HeadlessChromium, empty_dashboard: str, path: str
) -> None:
    # Title and at least one message saying what is missing.
    state = load_and_check(browser, empty_dashboard, path, f"empty-{path or 'live'}", 2)
    assert EMPTY_SAYS[path] in " ".join(state.infos), state.infos


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_on_a_seeded_database(
    browser: HeadlessChromium, seeded_dashboard: Served, path: str
) -> None:
    state = load_and_check(browser, seeded_dashboard.url, path, f"seeded-{path or 'live'}", 5)
    if path in ("", "history", "models", "eda", "review", "drift", "performance"):
        assert state.charts > 0, f"{path!r} drew no chart"
    if path == "":
        assert "Consumer lag" in state.text and "200" in state.text
    if path == "batches":
        # Tables draw on a canvas (no DOM text); the metrics and pager say what was loaded.
        assert "Batches scored\n\n3" in state.text and "Page (of 6)" in state.text
    if path == "models":
        assert "Champion" in state.text and "What drives the score" in state.text
    if path == "review":
        assert "Why it was flagged" in state.text and "far below normal" in state.text
        assert "Labels arriving" in state.text


def test_an_analyst_decides_an_alert_and_the_label_is_in_postgresql(
    browser: HeadlessChromium, seeded_dashboard: Served
) -> None:
    settings = seeded_dashboard.settings
    with connect(settings, "reader") as conn:
        first = conn.execute(
            "SELECT p.transaction_id::text FROM predictions p JOIN transactions t"
            " ON t.transaction_id = p.transaction_id WHERE p.is_fraud"
            " AND NOT EXISTS (SELECT 1 FROM predictions n WHERE n.transaction_id ="
            " p.transaction_id AND n.is_fraud AND n.model_version > p.model_version)"
            " ORDER BY p.score DESC, t.amount DESC, p.transaction_id LIMIT 1"
        ).fetchone()
    assert first is not None
    state = browser.open_streamlit_page(f"{seeded_dashboard.url}/review", timeout=240)
    assert first[0] in state.text  # the queue's first alert is the one preselected

    browser.type_into("input[aria-label='Your name']", "ana")
    browser.choose("legitimate")
    browser.type_into("textarea", "known customer, travelling")
    after = browser.press("Record decision", "(after the decision)")

    assert not after.errors and not after.exceptions, (after.errors, after.exceptions)
    assert f"Recorded {first[0]} as legitimate by ana." in after.text
    browser.screenshot(SCREENSHOTS / "seeded-review-decided.png", after.height)
    with connect(settings, "reader") as conn:
        labels = conn.execute(
            "SELECT is_fraud, source, labelled_by, note FROM labels WHERE transaction_id = %s",
            (first[0],),
        ).fetchall()
    assert labels == [(False, "analyst", "ana", "known customer, travelling")]
    # Decided, it has left the queue (only the confirmation still names it).
    assert first[0] not in after.text.replace(f"Recorded {first[0]}", "")


def test_beyond_loopback_the_dashboard_needs_a_password_to_start(tmp_path: Path) -> None:
    refused = subprocess.run(
        [str(FRAUDPIPE), "dashboard", "--address", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT,
        env={**os.environ, "FRAUDPIPE_DASHBOARD_PASSWORD": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1
    assert "FRAUDPIPE_DASHBOARD_PASSWORD" in refused.stderr


def test_beyond_loopback_nothing_shows_before_the_login(
    stack: Settings, browser: HeadlessChromium, tmp_path: Path
) -> None:
    password = uuid.uuid4().hex
    with (
        scratch_database(stack, prefix="fraudpipe_test_login") as empty,
        serving_dashboard(
            {
                "FRAUDPIPE_PG_DATABASE": empty.pg_database,
                "FRAUDPIPE_DASHBOARD_PASSWORD": password,
                "FRAUDPIPE_METRICS_PORT": str(free_port()),
            },
            tmp_path / "streamlit.log",
            address="0.0.0.0",
        ) as url,
    ):
        door = browser.open_streamlit_page(url)
        assert "Password" in door.text
        assert "Live" not in door.text and door.charts == 0
        wrong = browser.submit_password("not-it", "Log in")
        assert "Wrong password." in wrong.errors
        inside = browser.submit_password(password, "Log in")
        assert "Password" not in inside.text
        assert "Live" in inside.text, inside.text[:500]
