"""The fraudpipe image, built here with podman and run against the local stack.

What runs: `infra/container/build.sh` builds the Containerfile on a Debian 12 base made on this
machine with Python from Debian's packages; its scorer container scores a published stream
with exact counts in PostgreSQL and passes its HEALTHCHECK while it runs, and its dashboard
container answers Streamlit's health URL. The containers share the host's network, so they
reach the stack on loopback as the native processes do.

What does not run: the official `python:3.11-slim-bookworm` base is never pulled (no container
registry is reachable here), and the image is never pushed, nor run under Docker or Kubernetes.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values
from ports import free_port
from scoring_support import (
    assert_each_once,
    batch_status,
    champion_model,
    exactly_once,
    ingest_days,
    own_settings,
    predictions,
    scorer_env,
    scoring_topics,
)
from scratch_db import scratch_database
from waiting import wait_for

from fraudpipe.config import Settings
from fraudpipe.project import project_root
from fraudpipe.publish import publish_batch

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

IMAGE = "localhost/fraudpipe:test"
PODMAN = project_root() / "infra" / "container" / "podman.sh"
DAYS, ROWS = 2, 3000


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PODMAN), *args], capture_output=True, text=True, check=check, timeout=600
    )


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built from the checkout (the base is made once per machine)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: the image cannot be built or run here")
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        pytest.skip(f"podman cannot run here: {info.stderr.strip()[-300:]}")
    started = time.monotonic()
    subprocess.run(
        ["bash", str(project_root() / "infra" / "container" / "build.sh"), IMAGE],
        check=True,
        timeout=1200,
    )
    size = int(_podman("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout)
    print(f"image {IMAGE}: built in {time.monotonic() - started:.0f} s, {size / 1e6:,.0f} MB")
    return IMAGE


@pytest.fixture
def env_file(tmp_path: Path) -> Iterator[Path]:
    """A mode-600 file for `--env-file`: the project's settings and secrets, handed to the
    container the way a deployment hands them (never on a command line)."""
    path = tmp_path / "container.env"
    path.touch(mode=0o600)
    yield path
    path.unlink(missing_ok=True)


def _write_env(path: Path, settings: Settings, extra: dict[str, str]) -> None:
    found = {k: v for k, v in dotenv_values(project_root() / ".env").items() if v is not None}
    ours = {k: v for k, v in scorer_env(settings).items() if k.startswith("FRAUDPIPE_")}
    merged = found | ours | extra
    merged.pop("FRAUDPIPE_STACK_DIR", None)  # the image has its own
    path.write_text("".join(f"{k}={v}\n" for k, v in merged.items()))


@pytest.fixture
def stream(stack: Settings) -> Iterator[Settings]:
    """A database, topics, subjects, group and champion of the test's own."""
    with scratch_database(stack, prefix="fraudpipe_test") as db:
        settings = exactly_once(own_settings(db, uuid.uuid4().hex[:10]))
        with scoring_topics(settings), champion_model(settings, seed=7):
            yield settings


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"fraudpipe-test-{uuid.uuid4().hex[:8]}"
    yield name
    _podman("rm", "--force", "--time", "5", name, check=False)


def _healthy(name: str) -> bool:
    return _podman("healthcheck", "run", name, check=False).returncode == 0


def _wait(what: str, done: Callable[[], bool], seconds: float, name: str) -> None:
    def log() -> str:
        logs = _podman("logs", "--tail", "40", name, check=False)
        return f"its log:\n{logs.stdout}{logs.stderr}"

    wait_for(what, done, seconds, log, poll_s=0.5)


def test_the_image_runs_as_an_unprivileged_user_with_no_secret_inside(image: str) -> None:
    config = _podman("image", "inspect", image, "--format", "{{.Config.User}}|{{.Config.Env}}")
    user, env = config.stdout.strip().split("|", 1)
    assert user == "10001:10001"
    assert "PASSWORD" not in env and "SECRET" not in env, env
    files = _podman("run", "--rm", "--entrypoint", "ls", image, "-a", "/app").stdout.split()
    assert ".env" not in files and ".stack" not in files and ".git" not in files, files


def test_the_scorer_container_scores_a_stream_exactly_once(
    image: str, stream: Settings, env_file: Path, container_name: str, tmp_path: Path
) -> None:
    batches = ingest_days(stream, tmp_path, DAYS, ROWS, seed=61)
    for batch_id in batches:
        publish_batch(stream, batch_id)
    port = free_port()
    _write_env(env_file, stream, {"FRAUDPIPE_METRICS_HOST": "127.0.0.1"})
    _podman(
        "run", "--detach", "--name", container_name, "--network", "host",
        "--env-file", str(env_file),
        "--env", f"HEALTHCHECK_URL=http://127.0.0.1:{port}/readyz",
        image, "consume", "--metrics-port", str(port), "--batch-size", "500",
    )  # fmt: skip
    _wait("the scorer's readiness", lambda: _healthy(container_name), 180, container_name)
    _wait(
        "every batch scored",
        lambda: all(batch_status(stream, b) == "scored" for b in batches),
        300,
        container_name,
    )
    _podman("stop", "--time", "60", container_name)  # SIGTERM: finish the micro-batch, exit
    state = _podman("inspect", container_name, "--format", "{{.State.ExitCode}}").stdout
    assert state.strip() == "0", _podman("logs", container_name, check=False).stderr[-2000:]
    rows = [row for b in batches for row in predictions(stream, b)]
    assert_each_once(stream, rows, DAYS * ROWS)


def test_the_dashboard_container_answers_its_health_url(
    image: str, stack: Settings, env_file: Path, container_name: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/_stcore/health"
    _write_env(env_file, stack, {})
    _podman(
        "run", "--detach", "--name", container_name, "--network", "host",
        "--env-file", str(env_file), "--env", f"HEALTHCHECK_URL={url}",
        image, "dashboard", "--port", str(port),
    )  # fmt: skip

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return bool(response.status == 200 and response.read() == b"ok")
        except OSError:
            return False

    _wait("the dashboard's health URL", answers, 120, container_name)
    assert _healthy(container_name)
