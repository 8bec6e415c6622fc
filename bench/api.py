"""Scoring API latency and throughput, next to its floor and `mlflow models serve`, in one run.

On this machine, one after the other, each target is offered load by vegeta
(`infra/local/install_vegeta.sh`):

- the floor: ``GET /healthz`` of the same `fraudpipe serve` server, an endpoint that does
  nothing; no scoring endpoint of that server can be faster;
- `fraudpipe serve` with 1 and 2 workers: ``POST /v1/score``, one transaction per request;
- the anchor, what a user would otherwise pick: ``mlflow models serve -w 1 --env-manager
  local`` for the model version holding the serving alias (``champion``), ``POST
  /invocations`` with the same transaction as a one-row ``dataframe_split``.

Each body is a real ULB row (a seeded sample of both days; ``event_time`` from the dataset's
``Time``), and every request to `fraudpipe serve` carries a transaction id of its own (a fresh
uuid4): the API answers a repeated id from what it stored, which would not be scoring. vegeta
reads the targets lazily and stops when they run out, so no id is ever sent twice.

Measured for each target:

- **latency at fixed offered rates** (500, 1,000 and 2,000 requests/s by default), open loop:
  vegeta sends each request on schedule whether or not earlier ones were answered (a new
  connection when all are busy), so a slow answer cannot delay the requests behind it and hide
  from the percentiles (no coordinated omission). p50, p99, p99.9 and max are computed here
  from vegeta's per-request latencies (nearest rank), over every request sent, failed ones
  included (a timed-out request counts with the time it waited);
- **maximum throughput**: closed loop, ``-rate 0`` with K connections, each sending its next
  request as soon as the previous one is answered, for K = 16, 64 and 256 (mlflow: 1, 4 and
  16); the best successful answers per second of those runs is the maximum. `fraudpipe serve`
  decides what arrives together in one batch, so it needs many requests in flight to reach its
  maximum (1,391 -> 1,627 answers/s from 64 to 256 connections with one worker, here). A
  closed loop measures what the server completes when it never waits for work; its latencies
  are queueing at that concurrency, not a user's latency;
- **failures**: a transport error (timeout after 5 s, refused or reset connection) or a
  non-2xx answer. The goal is none at any offered rate below the target's maximum.

Past a target's maximum, the numbers say that it fails and how often, not much more: requests
pile up, vegeta opens a connection for each one waiting (thousands), and on its one core it
falls behind its own schedule ("vegeta late" in the table, and sent/s below the offered
rate) and starts some requests late, so a latency can exceed the timeout.

vegeta is pinned to one core (the last one allowed: core 1 of 2) and a one-process server to
another (core 0): `mlflow models serve -w 1`, and `fraudpipe serve --workers 1`. With two
workers, the server is given both cores, so one worker shares core 1 with vegeta. The stack's
services (the Kafka broker the API acknowledges its decisions to, PostgreSQL, MLflow, ...) are
not pinned and share both cores. The CPU columns show the cores busy during a run: vegeta's
(near 1.00 would mean the numbers are vegeta's, not the server's), the server's, and the rest of
the machine's (the broker and PostgreSQL at the API's service, and any other work).

Before each run the bench waits until the server and the machine are idle: the server's health
endpoint answers in under 50 ms three times in a row, its processes use under 20% of a core and
the whole machine under half a core (the decision recorder writes the previous run's decisions
to PostgreSQL after they were answered). A server whose health endpoint is still slow after
20 s (still working through the queue a rate it could not keep up with left behind: `mlflow
models serve` takes each abandoned request off its one event loop in turn, and logs a traceback
for it) is restarted, and the table says so; one answering fast while it or the machine stays
busy for 20 s has the cores busy noted. Each server's output goes to
``<stack_dir>/logs/bench-api/``.

Run: `uv run python bench/api.py [--duration 10] [--rates 500,1000,2000] [--workers 1,2]
[--skip-mlflow]` (the local stack must be up: the API needs Kafka and MLflow). About 7 minutes on
an idle machine; a busy one adds up to 20 s a run, waiting for it to be idle.
Decisions the API records are tagged ``source = "bench-api"`` and ``batch_id = "bench-api:<run>"``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import itertools
import json
import os
import resource
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final, TextIO

import httpx
import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.console import Console
from rich.table import Table

from fraudpipe.adapters.mlflow.principals import PASSWORD_VARIABLE, USERNAME_VARIABLE, basic_auth
from fraudpipe.adapters.mlflow.registry import current_serving_version
from fraudpipe.columns import MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.config import Settings, get_settings
from fraudpipe.data.sources import TIME_ZERO
from fraudpipe.data.ulb import ensure_ulb_csv

console = Console(width=160)  # wide enough that no column is cut in a log
REPO: Final = Path(__file__).resolve().parents[1]
#: The venv's scripts (`fraudpipe`, `mlflow`, and the `uvicorn` that `mlflow models serve` runs).
BIN: Final = Path(sys.executable).parent
HOST: Final = "127.0.0.1"

#: ULB rows the bodies are drawn from (cycled; the ids are what must not repeat).
SAMPLE_ROWS: Final = 20_000
SEED: Final = 7
BODY_SOURCE: Final = "bench-api"

#: Targets written for a closed-loop run, per second of it: more than any server here answers.
CLOSED_LOOP_TARGETS_PER_S: Final = 12_000
MLFLOW_CLOSED_LOOP_TARGETS_PER_S: Final = 1_000
#: vegeta's error when the targets run out: the end of a closed-loop run, not a failure.
NO_TARGETS: Final = "no targets to attack"

#: A server has settled when its health endpoint answers this fast this many times in a row.
SETTLED_MS: Final = 50.0
SETTLED_TIMES: Final = 3
SETTLE_TIMEOUT_S: Final = 20.0
#: ... and its processes use less than this share of a core over a second, and the whole
#: machine (the stack's services too: the previous run's decisions may still be being written)
#: less than this many cores; an idle stack uses about 0.15 here.
QUIET_SERVER: Final = 0.2
QUIET_MACHINE: Final = 0.5
READY_TIMEOUT_S: Final = 180.0

#: The goals (issue text): at 1,000 requests/s offered, and against the anchor's maximum.
GOAL_RATE: Final = 1_000
GOAL_P99_MS: Final = 10.0
GOAL_TIMES_MLFLOW: Final = 40.0


# -- the load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bodies:
    """Each sampled row rendered once, for both APIs (JSON text)."""

    api_tails: list[str]
    """A /v1/score body without its leading ``{"transaction_id": "<id>",``."""
    mlflow: list[str]
    """A one-row ``dataframe_split`` body for /invocations."""

    def api(self, batch_id: str) -> Iterator[bytes]:
        """/v1/score bodies, endlessly, each with a fresh transaction id."""
        for tail in itertools.cycle(self.api_tails):
            yield f'{{"transaction_id":"{uuid.uuid4()}","batch_id":"{batch_id}",{tail}'.encode()

    def anchor(self) -> Iterator[bytes]:
        for body in itertools.cycle(self.mlflow):
            yield body.encode()


def load_bodies(settings: Settings) -> Bodies:
    """A seeded sample of ULB rows (both days) as request bodies."""
    raw = pd.read_csv(ensure_ulb_csv(settings))
    sample = raw.sample(n=SAMPLE_ROWS, random_state=SEED)
    zero_ms = int(TIME_ZERO.timestamp() * 1000)
    names = ["amount", *V_COLUMNS]
    assert ["event_time", *names] == MODEL_INPUT_COLUMNS  # the order the anchor's rows take
    seconds = sample["Time"].to_numpy(dtype=np.float64).tolist()
    features = sample[["Amount", *(c.upper() for c in V_COLUMNS)]].to_numpy(dtype=np.float64)
    api_tails, mlflow = [], []
    for at, values in zip(seconds, features.tolist(), strict=True):
        # ULB's Time is whole seconds from TIME_ZERO.
        event_time = (TIME_ZERO + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%SZ")
        named = dict(zip(names, values, strict=True))
        body = {"source": BODY_SOURCE, "event_time": event_time, **named}
        api_tails.append(json.dumps(body, separators=(",", ":"))[1:])
        split = {"columns": MODEL_INPUT_COLUMNS, "data": [[zero_ms + round(at * 1000), *values]]}
        mlflow.append(json.dumps({"dataframe_split": split}, separators=(",", ":")))
    return Bodies(api_tails, mlflow)


def write_targets(
    path: Path, url: str, headers: dict[str, str], bodies: Iterator[bytes] | None, count: int
) -> None:
    """`count` vegeta JSON targets (``-format json``); a GET without a body if `bodies` is None.

    The file holds the API key: it is created readable by its owner only.
    """
    method = "GET" if bodies is None else "POST"
    header = json.dumps({k: [v] for k, v in headers.items()})
    head = f'{{"method":"{method}","url":{json.dumps(url)},"header":{header}'
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        if bodies is None:
            out.write((head + "}\n") * count)
            return
        for body in itertools.islice(bodies, count):
            out.write(f'{head},"body":"{base64.b64encode(body).decode()}"}}\n')


# -- the servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_list(cores: Sequence[int] | None) -> str:
    return "any" if cores is None else ",".join(map(str, cores))


def pinned(argv: list[str], cores: Sequence[int] | None) -> list[str]:
    return argv if cores is None else ["taskset", "-c", cpu_list(cores), *argv]


@dataclass
class Server:
    """One server process (and its workers), in a process group of its own."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    health_path: str
    cores: Sequence[int] | None
    log_path: Path
    startup_seconds: float = 0.0
    restarts: int = 0
    ready_answer: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: TextIO | None = field(default=None, init=False, repr=False)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        # One log per run: a restart appends to it.
        self._log = self.log_path.open("a" if self.restarts else "w")
        self._log.write(f"\n--- {time.strftime('%H:%M:%S')} start {shlex.join(self.argv)}\n")
        self._log.flush()
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            pinned(self.argv, self.cores),
            env=self.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its workers
        )
        self._wait_ready()
        self.startup_seconds = time.perf_counter() - started

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise SystemExit(
                        f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                        + self.log_tail()
                    )
                try:
                    answer = client.get(self.base + self.ready_path)
                    if answer.status_code == httpx.codes.OK:
                        self.ready_answer = answer.text.strip()[:200]
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        self.stop()
        raise SystemExit(
            f"{self.name} was not ready after {READY_TIMEOUT_S:.0f} s "
            f"(GET {self.ready_path}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        if self._log is not None:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of every live process of the server's group so far."""
        if self.proc is None:
            return 0.0
        group, ticks = self.proc.pid, 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) == group:  # pgrp
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def settle(self) -> Quiet | None:
        """Wait until the server and the machine are idle: see `Quiet`.

        Returns:
            How busy the server and the machine were over the last second: quiet, unless they
            stayed busy for `SETTLE_TIMEOUT_S` while the server answered fast (its decisions
            still being written, say, or other work on the machine); None if the server's
            health endpoint never answered fast (its queue of requests is not drained).
        """
        deadline, fast = time.monotonic() + SETTLE_TIMEOUT_S, 0
        server, machine, window = self.cpu_seconds(), machine_cpu_seconds(), time.perf_counter()
        last = Quiet(1.0, float(os.cpu_count() or 1))
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    ok = client.get(self.base + self.health_path).status_code == httpx.codes.OK
                except httpx.TransportError:
                    ok = False
                fast = fast + 1 if ok and (time.perf_counter() - started) * 1e3 < SETTLED_MS else 0
                if (elapsed := time.perf_counter() - window) >= 1.0:
                    now_server, now_machine = self.cpu_seconds(), machine_cpu_seconds()
                    last = Quiet((now_server - server) / elapsed, (now_machine - machine) / elapsed)
                    server, machine, window = now_server, now_machine, time.perf_counter()
                    if fast >= SETTLED_TIMES and last.quiet:
                        return last
                time.sleep(0.1)
        return last if fast >= SETTLED_TIMES else None


@dataclass(frozen=True)
class Quiet:
    """Cores busy over a second: the server's processes, and the whole machine."""

    server: float
    machine: float

    @property
    def quiet(self) -> bool:
        return self.server < QUIET_SERVER and self.machine < QUIET_MACHINE


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (not idle, not waiting on I/O) since boot."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running(server: Server) -> Iterator[Server]:
    console.print(f"starting {server.name} (log: {server.log_path}) ...")
    try:
        server.start()
        console.print(
            f"  ready in {server.startup_seconds:.1f} s: GET {server.ready_path} → "
            f"{server.ready_answer or '(empty)'}"
        )
        yield server
    finally:
        server.stop()


def probe(server: Server, path: str, headers: dict[str, str], body: bytes) -> None:
    """One request before the load: it must be answered 2xx, and the answer is shown."""
    answer = httpx.post(server.base + path, content=body, headers=headers, timeout=30.0)
    shown = answer.text.strip().replace("\n", " ")
    console.print(f"  probe POST {path} → {answer.status_code} {shown[:240]}")
    if not answer.is_success:
        raise SystemExit(f"{server.name} refused the probe request:\n{server.log_tail()}")


# -- one run of load -------------------------------------------------------------------------


def label(kind: str, workers: int) -> str:
    return f"{kind}, {workers} worker{'s' if workers > 1 else ''}"


#: What each kind of target is, for the legend under the table.
KINDS: Final = {
    "floor": "GET /healthz of `fraudpipe serve` (an endpoint that does nothing)",
    "serve": "POST /v1/score of `fraudpipe serve`, one transaction",
    "mlflow": "POST /invocations of `mlflow models serve --env-manager local`, one row",
}


@dataclass
class Measured:
    kind: str
    """floor, serve or mlflow (`KINDS`)."""
    workers: int
    rate: int | None
    """Requests/s offered; None for a closed loop."""
    connections: int | None
    """Closed loop: requests in flight at any time."""
    cores: str
    """Where the server / vegeta ran."""
    sent: int
    ok: int
    latencies_ms: npt.NDArray[np.float64]
    send_rate: float
    throughput: float
    load_cpu: float
    server_cpu: float
    machine_cpu: float
    """Cores busy on the whole machine during the run."""
    errors: Counter[str] = field(default_factory=Counter)
    note: str = ""

    @property
    def target(self) -> str:
        return label(self.kind, self.workers)

    @property
    def failed(self) -> int:
        return self.sent - self.ok

    @property
    def offered(self) -> str:
        return f"{self.rate:,}/s" if self.rate is not None else f"closed {self.connections}"

    def pct(self, q: float) -> float:
        if not len(self.latencies_ms):
            return float("nan")
        return float(np.percentile(self.latencies_ms, q, method="inverted_cdf"))


def error_kind(code: int, error: str) -> str:
    if not error:
        return f"HTTP {code}"
    for needle, kind in (
        ("Client.Timeout", "timeout"),
        ("deadline exceeded", "timeout"),
        ("connection refused", "refused"),
        ("connection reset", "reset"),
        ("too many open files", "vegeta: out of files"),
        ("EOF", "closed (EOF)"),
    ):
        if needle in error:
            return kind
    return error[-60:]


@dataclass(frozen=True)
class Load:
    """vegeta, and where it runs."""

    vegeta: Path
    cores: Sequence[int] | None
    timeout_s: float
    workdir: Path

    def run(
        self,
        server: Server,
        kind: str,
        workers: int,
        make_targets: Callable[[Path, int], None],
        *,
        duration: float,
        rate: int | None = None,
        connections: int | None = None,
        targets_per_s: int = 0,
    ) -> Measured:
        what = f"{rate:,}/s offered" if rate is not None else f"closed loop of {connections}"
        console.print(f"  {label(kind, workers)}: {what}, {duration:.0f} s ...")
        # A fixed rate sends rate x duration requests: a few more targets than that, so none
        # is sent twice; a closed loop stops when its targets run out.
        count = (
            round(rate * duration * 1.02) + 10
            if rate is not None
            else int(targets_per_s * duration)
        )
        targets, results = self.workdir / "targets.json", self.workdir / "results.bin"
        make_targets(targets, count)
        pace = ["-rate", f"{rate}/1s"] if rate is not None else ["-rate", "0"]
        if connections is not None:
            pace += ["-workers", str(connections), "-max-workers", str(connections)]
        argv = [
            str(self.vegeta), "attack", "-format", "json", "-lazy", "-targets", str(targets),
            *pace, "-duration", f"{duration}s", "-timeout", f"{self.timeout_s}s",
            "-max-body", "0", "-output", str(results),
        ]  # fmt: skip
        # The previous run's backlog, if any, must not be this one's: a server still working
        # through queued requests after SETTLE_TIMEOUT_S is restarted.
        idle = server.settle()
        restarted = idle is None
        if restarted:
            server.restart()
            idle = server.settle()
        server_before, machine_before = server.cpu_seconds(), machine_cpu_seconds()
        started = time.perf_counter()
        with (self.workdir / "vegeta.log").open("w") as errors:
            proc = subprocess.Popen(pinned(argv, self.cores), stderr=errors)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        server_cpu = (server.cpu_seconds() - server_before) / wall
        machine_cpu = (machine_cpu_seconds() - machine_before) / wall
        targets.unlink()
        if proc.returncode != 0:
            raise SystemExit(
                f"vegeta failed ({proc.returncode}): {(self.workdir / 'vegeta.log').read_text()}"
            )
        frame = read_results(self.vegeta, results, self.workdir / "results.csv")
        ran_out = frame["error"] == NO_TARGETS
        frame = frame[~ran_out]
        ok = frame["code"].between(200, 299) & (frame["error"] == "")
        starts = frame["timestamp"].to_numpy(dtype=np.int64)
        latencies = frame["latency"].to_numpy(dtype=np.int64)
        span_s = (starts.max() - starts.min()) / 1e9 if len(frame) else 0.0
        busy_s = ((starts + latencies).max() - starts.min()) / 1e9 if len(frame) else 0.0
        measured = Measured(
            kind=kind,
            workers=workers,
            rate=rate,
            connections=connections,
            cores=f"{cpu_list(server.cores)}/{cpu_list(self.cores)}",
            sent=len(frame),
            ok=int(ok.sum()),
            latencies_ms=latencies.astype(np.float64) / 1e6,
            send_rate=len(frame) / span_s if span_s else 0.0,
            throughput=float(ok.sum()) / busy_s if busy_s else 0.0,
            load_cpu=(usage.ru_utime + usage.ru_stime) / wall,
            server_cpu=server_cpu,
            machine_cpu=machine_cpu,
            errors=Counter(
                error_kind(int(c), str(e))
                for c, e in zip(frame["code"][~ok], frame["error"][~ok], strict=True)
            ),
        )
        if rate is not None and ran_out.any():
            measured.note = "out of targets"
        if rate is not None and measured.send_rate < 0.95 * rate:
            # Thousands of connections open at once (a server far past its maximum) keep
            # vegeta's one core busy enough that it falls behind its own schedule.
            measured.note = "; ".join(filter(None, (measured.note, "vegeta late")))
        if rate is None and ran_out.any():
            measured.note = f"stopped at {count:,} requests (targets)"
        if restarted:
            measured.note = "; ".join(filter(None, (measured.note, "restarted")))
        elif idle is not None and not idle.quiet:
            busy = f"busy {idle.server:.2f}/{idle.machine:.2f}"
            measured.note = "; ".join(filter(None, (measured.note, busy)))
        console.print(
            f"    {measured.sent:,} sent, {measured.failed:,} failed, "
            f"{measured.throughput:,.0f} ok/s, p99 {measured.pct(99):.1f} ms"
        )
        return measured


def read_results(vegeta: Path, results: Path, csv: Path) -> pd.DataFrame:
    """vegeta's results (gob, written during the run) as columns, decoded after the run."""
    subprocess.run(
        [str(vegeta), "encode", "--to", "csv", "--output", str(csv), str(results)], check=True
    )
    results.unlink()
    columns = ["timestamp", "code", "latency", "bytes_out", "bytes_in", "error"]
    frame = pd.read_csv(
        csv,
        header=None,
        names=[*columns, "body", "attack", "seq", "method", "url", "headers"],
        usecols=columns,
        dtype={"error": str},
        keep_default_na=False,
    )
    csv.unlink()
    return frame


# -- the targets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    duration: float
    rates: tuple[int, ...]
    connections: tuple[int, ...]
    mlflow_duration: float
    mlflow_connections: tuple[int, ...]


@dataclass(frozen=True)
class Cores:
    """Who runs where: vegeta on the last core allowed, one-process servers on the first."""

    load: Sequence[int] | None
    one: Sequence[int] | None
    many: Sequence[int] | None

    @classmethod
    def of_this_machine(cls) -> Cores:
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) < 2:
            return cls(None, None, None)
        # With 3 cores or more, the workers keep off vegeta's; with 2 they need both.
        many = allowed[:-1] if len(allowed) > 2 else allowed
        return cls([allowed[-1]], [allowed[0]], many)


def bench_api(
    plan: Plan, load: Load, cores: Cores, bodies: Bodies, workers: int, serve: list[str],
    logs: Path, run_id: str, ready: dict[str, str], out: list[Measured],
) -> None:  # fmt: skip
    """The floor and /v1/score of one `fraudpipe serve` server, into `out` as measured."""
    key = secrets.token_urlsafe(24)
    # The key reaches the server in its environment, never on a command line.
    env = {**os.environ, "FRAUDPIPE_API_KEYS": f"bench={key}"}
    port = free_port()
    server = Server(
        name=f"fraudpipe serve --workers {workers}",
        argv=[*serve, "--host", HOST, "--port", str(port), "--workers", str(workers)],
        env=env,
        port=port,
        ready_path="/readyz",
        health_path="/healthz",
        cores=cores.one if workers == 1 else cores.many,
        log_path=logs / f"serve-{workers}w.log",
    )
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    api_bodies = bodies.api(f"{BODY_SOURCE}:{run_id}")

    def health_targets(path: Path, count: int) -> None:
        write_targets(path, server.base + "/healthz", {}, None, count)

    def score_targets(path: Path, count: int) -> None:
        write_targets(path, server.base + "/v1/score", headers, api_bodies, count)

    with running(server):
        ready[server.name] = server.ready_answer
        probe(server, "/v1/score", headers, next(api_bodies))
        for kind, make, per_s in (
            ("floor", health_targets, CLOSED_LOOP_TARGETS_PER_S * 3),
            ("serve", score_targets, CLOSED_LOOP_TARGETS_PER_S),
        ):
            for k in plan.connections:
                out.append(
                    load.run(server, kind, workers, make, duration=plan.duration, connections=k,
                             targets_per_s=per_s)
                )  # fmt: skip
            for rate in plan.rates:
                out.append(load.run(server, kind, workers, make, duration=plan.duration, rate=rate))


def champion_uri(settings: Settings) -> str:
    version = current_serving_version(settings)
    if version is None:
        raise SystemExit(
            f"no version of {settings.model_name} holds @{settings.serving_alias}: "
            "train one first (`fraudpipe demo`), or pass --mlflow-model"
        )
    return f"models:/{settings.model_name}/{version}"


def bench_mlflow(
    plan: Plan, load: Load, cores: Cores, bodies: Bodies, settings: Settings, model_uri: str,
    logs: Path, ready: dict[str, str], out: list[Measured],
) -> None:  # fmt: skip
    """`mlflow models serve -w 1` for the same model version (the anchor), into `out`."""
    user, password = basic_auth(settings, "reader")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # it execs `uvicorn`
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        USERNAME_VARIABLE: user,
        PASSWORD_VARIABLE: password,
    }
    port = free_port()
    serve = ["models", "serve", "-m", model_uri, "-h", HOST, "-p", str(port)]
    server = Server(
        name=f"mlflow models serve -m {model_uri} -w 1",
        argv=[str(BIN / "mlflow"), *serve, "-w", "1", "--env-manager", "local"],
        env=env,
        port=port,
        ready_path="/ping",
        health_path="/ping",
        cores=cores.one,
        log_path=logs / "mlflow-serve.log",
    )
    headers = {"Content-Type": "application/json"}
    anchor_bodies = bodies.anchor()

    def targets(path: Path, count: int) -> None:
        write_targets(path, server.base + "/invocations", headers, anchor_bodies, count)

    with running(server):
        ready[server.name] = f"ready in {server.startup_seconds:.0f} s"
        probe(server, "/invocations", headers, next(anchor_bodies))
        for k in plan.mlflow_connections:
            out.append(
                load.run(server, "mlflow", 1, targets, duration=plan.duration, connections=k,
                         targets_per_s=MLFLOW_CLOSED_LOOP_TARGETS_PER_S)
            )  # fmt: skip
        for rate in plan.rates:
            out.append(
                load.run(server, "mlflow", 1, targets, duration=plan.mlflow_duration, rate=rate)
            )


# -- the report ------------------------------------------------------------------------------


def maximum(rows: Sequence[Measured], kind: str, workers: int) -> float | None:
    closed = [
        r.throughput for r in rows if (r.kind, r.workers) == (kind, workers) and r.rate is None
    ]
    return max(closed) if closed else None


def served_version(ready_answer: str) -> str | None:
    """The model version a /readyz answer names, if it is JSON with ``model_version``."""
    try:
        answer = json.loads(ready_answer)
    except ValueError:
        return None
    version = answer.get("model_version") if isinstance(answer, dict) else None
    return None if version is None else str(version)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def report(
    rows: list[Measured], plan: Plan, cores: Cores, load: tuple[float, float],
    ready: dict[str, str], model_uri: str | None, timeout_s: float,
) -> None:  # fmt: skip
    table = Table(
        title="scoring API latency (ms) at offered rates (open loop), and closed loops of N "
        "connections; one run, this machine",
        caption="; ".join(f"{k}: {v}" for k, v in KINDS.items()) + ". cores: the server's / "
        "vegeta's. CPU: cores busy during the run, vegeta's, the server's and the rest of the "
        "machine's (the stack's services the API waits on among them). note: the failures' "
        "kinds; vegeta late: it sent below the offered rate; restarted: the server still had "
        "the previous run's queue; busy: cores the server / the machine kept busy before the "
        "run, after waiting 20 s for them to be idle",
    )
    columns = ("target", "offered", "cores", "sent", "sent/s", "ok/s", "p50", "p99", "p99.9",
               "max", "failed", "CPU vegeta", "server", "rest", "note")  # fmt: skip
    for col in columns:
        left = col in ("target", "offered", "cores", "note")
        table.add_column(col, justify="left" if left else "right", no_wrap=col != "note")
    for r in rows:
        kinds = r.errors.most_common()
        why = kinds[0][0] if len(kinds) == 1 else ", ".join(f"{k} {n:,}" for k, n in kinds)
        table.add_row(
            r.target, r.offered, r.cores, f"{r.sent:,}", f"{r.send_rate:,.0f}",
            f"{r.throughput:,.0f}", f"{r.pct(50):.2f}", f"{r.pct(99):.2f}", f"{r.pct(99.9):.2f}",
            f"{r.pct(100):.2f}", f"{r.failed:,}", f"{r.load_cpu:.2f}", f"{r.server_cpu:.2f}",
            f"{max(r.machine_cpu - r.load_cpu - r.server_cpu, 0.0):.2f}",
            "; ".join(filter(None, (why, r.note))),
        )  # fmt: skip
    console.print(table)

    targets = list(dict.fromkeys((r.kind, r.workers) for r in rows))
    anchor_max = maximum(rows, "mlflow", 1)
    best = Table(title="maximum throughput: the best closed loop (successful answers/s)")
    for col in ("target", "max ok/s", "share of its floor", "× mlflow models serve"):
        best.add_column(col, justify="left" if col == "target" else "right")
    for kind, workers in targets:
        top = maximum(rows, kind, workers)
        if top is None:
            continue
        floor = maximum(rows, "floor", workers) if kind == "serve" else None
        best.add_row(
            label(kind, workers),
            f"{top:,.0f}",
            f"{top / floor:.0%}" if floor else "",
            f"{top / anchor_max:,.1f}" if anchor_max else "",
        )
    console.print(best)

    for name, answer in ready.items():
        console.print(f"{name}: {answer}")
    if model_uri is not None and model_uri.startswith("models:/"):
        anchor_version = model_uri.rsplit("/", 1)[1]
        for name, answer in ready.items():
            version = served_version(answer)
            if version is not None and version != anchor_version:
                console.print(
                    f"[bold red]{name} served version {version}, the anchor {anchor_version}: "
                    "the alias moved during the run[/]"
                )
    console.print(
        f"vegeta: open loop for {plan.duration:.0f} s at each offered rate "
        f"({plan.mlflow_duration:.0f} s for mlflow), closed loops for {plan.duration:.0f} s; "
        f"requests time out after {timeout_s:.0f} s; percentiles (nearest rank) over every "
        "request sent, failed ones included"
    )
    if cores.load is not None:
        console.print(
            f"cores: vegeta on {cpu_list(cores.load)}; one-process servers on "
            f"{cpu_list(cores.one)}; 2+ workers on {cpu_list(cores.many)}; the stack's services "
            "(Kafka, PostgreSQL, MLflow, ...) unpinned"
        )
    console.print(
        f"load average (1 min) before / after: {load[0]:.1f} / {load[1]:.1f} on "
        f"{os.cpu_count()} cores"
    )
    for kind, workers in targets:
        if kind != "serve":
            continue
        name = f"fraudpipe serve, {label(kind, workers).split(', ')[1]}"
        at_goal = next(
            (r for r in rows if (r.kind, r.workers, r.rate) == (kind, workers, GOAL_RATE)), None
        )
        if at_goal is not None:
            p99 = at_goal.pct(99)
            console.print(
                f"{name}: goal p99 < {GOAL_P99_MS:.0f} ms at {GOAL_RATE:,} requests/s offered: "
                f"{p99:.2f} ms → {verdict(p99 < GOAL_P99_MS)}"
            )
        top = maximum(rows, kind, workers)
        if top is None:
            continue
        if anchor_max:
            times = top / anchor_max
            console.print(
                f"{name}: goal maximum throughput ≥ {GOAL_TIMES_MLFLOW:.0f}x mlflow models "
                f"serve's ({anchor_max:,.1f}/s): {top:,.0f}/s = {times:,.1f}x → "
                f"{verdict(times >= GOAL_TIMES_MLFLOW)}"
            )
        else:
            console.print(f"{name}: goal ≥ {GOAL_TIMES_MLFLOW:.0f}x mlflow: not measured")
        below = [
            r for r in rows
            if (r.kind, r.workers) == (kind, workers) and r.rate is not None and r.rate < top
        ]  # fmt: skip
        failures = sum(r.failed for r in below)
        rates = ", ".join(f"{r.rate:,}" for r in below)
        console.print(
            f"{name}: goal no failed request at a rate below its maximum ({top:,.0f}/s): "
            + (
                f"{failures:,} failed at {rates}/s offered → {verdict(failures == 0)}"
                if below
                else "not measured (every offered rate was above it)"
            )
        )


# -- main ------------------------------------------------------------------------------------


def install_vegeta() -> Path:
    done = subprocess.run(
        ["bash", str(REPO / "infra/local/install_vegeta.sh")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(done.stdout.strip().splitlines()[-1])


def raise_open_files() -> None:
    # Open-loop load on a server that cannot keep up opens a connection per waiting request,
    # on both sides (the servers inherit this limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def numbers(text: str) -> tuple[int, ...]:
    return tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--rates", default="500,1000,2000", help="offered requests/s")
    parser.add_argument("--workers", default="1,2", help="fraudpipe serve worker counts")
    parser.add_argument("--connections", default="16,64,256", help="closed-loop connections")
    parser.add_argument("--skip-mlflow", action="store_true", help="no anchor")
    parser.add_argument(
        "--mlflow-duration", type=float, default=5.0, help="seconds per mlflow fixed-rate run"
    )
    parser.add_argument("--mlflow-connections", default="1,4,16")
    parser.add_argument(
        "--mlflow-model",
        help="the anchor's model URI or path (default: models:/<model>/<champion's version>)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="request timeout, seconds")
    parser.add_argument(
        "--serve-command",
        default=f"{BIN / 'fraudpipe'} serve",
        help="the API's command, before --host/--port/--workers (to try another server)",
    )
    args = parser.parse_args()
    plan = Plan(
        duration=args.duration,
        rates=numbers(args.rates),
        connections=numbers(args.connections),
        mlflow_duration=args.mlflow_duration,
        mlflow_connections=numbers(args.mlflow_connections),
    )
    raise_open_files()
    settings = get_settings()
    logs = settings.logs_dir / "bench-api"
    logs.mkdir(parents=True, exist_ok=True)
    vegeta = install_vegeta()
    cores = Cores.of_this_machine()
    model_uri = None
    if not args.skip_mlflow:
        # Resolved first: a stack without MLflow fails here, not after the API's runs.
        model_uri = args.mlflow_model or champion_uri(settings)
    console.print(f"sampling {SAMPLE_ROWS:,} ULB rows for the bodies ...")
    bodies = load_bodies(settings)
    run_id = uuid.uuid4().hex[:8]
    load_before = os.getloadavg()[0]
    rows: list[Measured] = []
    ready: dict[str, str] = {}
    broken: list[str] = []
    serve = shlex.split(args.serve_command)

    def attempt(name: str, run: Callable[[], None]) -> None:
        # A target that fails (a server that never gets ready, say) is reported and the others
        # still run: what was measured is printed either way.
        try:
            run()
        except SystemExit as exc:
            console.print(f"[bold red]{name} failed:[/] {exc}")
            broken.append(name)

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        load = Load(vegeta, cores.load, args.timeout, Path(tmp))
        for w in numbers(args.workers):
            attempt(
                f"fraudpipe serve --workers {w}",
                functools.partial(
                    bench_api, plan, load, cores, bodies, w, serve, logs, run_id, ready, rows
                ),
            )
        if model_uri is not None:
            anchor = functools.partial(
                bench_mlflow, plan, load, cores, bodies, settings, model_uri, logs, ready, rows
            )
            attempt("mlflow models serve", anchor)
    report(rows, plan, cores, (load_before, os.getloadavg()[0]), ready, model_uri, args.timeout)
    if broken:
        raise SystemExit(f"not measured to the end: {', '.join(broken)}")


if __name__ == "__main__":
    main()
