"""Scale-out curve of the scoring service: 1, 2 and 4 scorer processes on 12 partitions.

Loads the real ULB dataset (284,807 rows) into a scratch database, registers a model trained on
it in MLflow (own name, champion, as `bench/stream.py` does), then adds synthetic days until the
database holds at least `--messages` distinct transactions; the backlog is the newest
`--messages` of them, as Avro `Transaction` messages (each transaction id once). Then for each
process count N (`--processes`), on a topic of its own with 12 partitions:

- the backlog is produced inside ONE open Kafka transaction, so the scorers (read_committed)
  cannot see it yet; N scorer processes (`python -m consumers.scorer`) start in one new
  consumer group, and once every partition is held and the group has settled the transaction
  commits: the whole backlog appears at once, and neither the group join nor the production is
  in the measured window;
- throughput = messages / (last micro-batch committed − first message consumed), from the
  scorers' own clocks (their `"scorer stopped"` log lines); the scorers are stopped (SIGTERM,
  graceful) once their metrics say every message is scored;
- exact counts: the predictions table holds exactly `--messages` rows with as many distinct
  transaction ids (it is emptied before each N), the scorers consumed exactly that many, and a
  read_committed reader finds exactly that many predictions (distinct keys) on the output topic;
- CPU in the window, from /proc sampled every 0.25 s and interpolated to the window's ends: the
  scorer processes (split into librdkafka's threads and the rest: the interpreter's threads
  with the native code they call), PostgreSQL (the postmaster, its children and children it
  reaped, but the backends of other databases, shown apart: as `bench/stream.py` counts it),
  the Kafka broker's process tree, and the whole machine (/proc/stat).
  The scorers' CPU over their whole life (start-up, join, stop: `getrusage` of the children)
  is shown too;
- a profile of the scorers: CPU per process and per thread, and the time each micro-batch
  spent in each stage (the scorers' own histograms, scraped from their metrics endpoints).

The line under the tables names what limits the curve, from those numbers.

Run: `uv run python bench/scaleout.py [--messages 500000] [--processes 1,2,4]` (the local stack
must be up; nothing is left behind: database, topics, subjects, consumer groups and the
registered model are removed; the transactional ids expire on the broker by themselves). The
machine is shared: other work running meanwhile shows as "rest of machine".
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings, get_settings
from fraudpipe.data.resolve import DEFAULT_SEED, fit_on_ulb
from fraudpipe.data.synthetic import FIRST_SYNTHETIC_DAY, SyntheticSource
from fraudpipe.data.ulb import UlbSource
from fraudpipe.ingest import ingest
from fraudpipe.logs import configure_logging

sys.path.insert(0, str(Path(__file__).parent))
import stream  # the bench's environment, messages and scorer-process helpers
from proc_cpu import Sampler, describe_pid, read_pid
from scratch_db import scratch_database  # on the path since `stream` put it there

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 240)
REPO: Final = Path(__file__).resolve().parents[1]
PARTITIONS: Final = 12
ASSIGNMENT_EVENTS: Final = ("partitions assigned", "partitions revoked", "partitions lost")
#: A scorer's writers (`ScoringOptions.writers`): micro-batches written at once per process.
WRITERS: Final = 2
#: Shorter windows are a handful of micro-batches: no verdict is read from them.
MIN_WINDOW_S: Final = 5.0


@dataclass(frozen=True)
class Plan:
    messages: int
    processes: tuple[int, ...]
    synthetic_days: int
    """At least this many synthetic days are ingested (more if `messages` needs them)."""
    idle_exit_s: float
    """The scorers' own idle exit: a backstop only (they are stopped once all is scored)."""
    keep_logs: Path | None
    """Where to keep the scorers' logs (None: a temporary directory)."""


@dataclass
class Result:
    """One process count's run."""

    processes: int
    messages: int
    window_s: float
    startup_s: float
    """Scorers spawned → every one has loaded its model (imports, connections, model)."""
    join_s: float
    """Every model loaded → every partition held by one scorer (the group's last change)."""
    shares: list[int]
    scorer_s: float
    scorer_rdk_s: float
    busiest_thread_s: float
    postgres_s: float
    """Every PostgreSQL process but the backends of other databases (`Sampler.postgres_seconds`,
    as `bench/stream.py` counts it)."""
    postgres_other_s: float
    """The backends of other databases (other work on the shared server)."""
    broker_s: float
    busy_s: float
    """Busy CPU seconds of the whole machine."""
    busy_share: float
    """Busy / (cores × window)."""
    scorer_life_s: float
    stage_s: dict[str, float]
    micro_batches: int
    counts: str

    @property
    def rate(self) -> float:
        return self.messages / self.window_s

    def per_100k(self, seconds: float) -> float:
        return seconds * 100_000 / self.messages

    def cores(self, seconds: float) -> float:
        return seconds / self.window_s

    @property
    def rest_s(self) -> float:
        pipeline = self.scorer_s + self.postgres_s + self.postgres_other_s + self.broker_s
        return max(0.0, self.busy_s - pipeline)

    @property
    def python_cores_per_process(self) -> float:
        return self.cores(self.scorer_s - self.scorer_rdk_s) / self.processes

    @property
    def loop_share(self) -> float:
        """Share of each consume loop's window spent decoding and scoring."""
        return (self.stage_s["decode"] + self.stage_s["score"]) / (self.processes * self.window_s)

    @property
    def write_share(self) -> float:
        """Share of the writers' window spent in the write stage (waiting on PostgreSQL)."""
        return self.stage_s["write"] / (self.processes * WRITERS * self.window_s)

    @property
    def publish_share(self) -> float:
        """Share of each publish stage's window spent publishing and committing (the broker)."""
        busy = self.stage_s["publish"] + self.stage_s["turn"] + self.stage_s["commit"]
        return busy / (self.processes * self.window_s)


# -- data --------------------------------------------------------------------------------------


def count_transactions(settings: Settings) -> int:
    with connect(settings) as conn:
        row = conn.execute("SELECT count(*) FROM transactions").fetchone()
    assert row is not None
    return int(row[0])


def add_synthetic_days(settings: Settings, messages: int, at_least: int) -> int:
    """Synthetic days after the ULB's until `messages` transactions are there; days added."""
    have = count_transactions(settings)
    if have >= messages and at_least == 0:
        return 0
    generator = fit_on_ulb(settings)
    source = SyntheticSource(generator, DEFAULT_SEED)
    days = max(at_least, math.ceil(max(0, messages - have) / generator.rows_per_day))
    added = 0
    while True:
        wanted = [FIRST_SYNTHETIC_DAY + timedelta(days=added + i) for i in range(days)]
        console.print(f"ingesting {len(wanted)} synthetic day(s) from {wanted[0]} ...")
        ingest(settings, source, wanted)
        added += days
        have = count_transactions(settings)
        if have >= messages:
            return added
        days = 1  # a Poisson day came out short


def newest(settings: Settings, n: int) -> stream.Transactions:
    """The newest `n` transactions in event-time order, each id once."""
    everything = stream.load_transactions(settings)
    if len(everything) < n:
        raise SystemExit(f"{len(everything):,} transactions in the database, {n:,} wanted")
    txs = everything.rows(len(everything) - n, len(everything))
    distinct = len(np.unique(np.ascontiguousarray(txs.ids).view("V16")))
    if distinct != n:
        raise SystemExit(f"the backlog holds {distinct:,} distinct ids for {n:,} messages")
    return txs


# -- the scorers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float] | None:
    """The scorer's counters of interest; None while (or once) its endpoint is down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (
                "fraudpipe_scorer_transactions_scored_total",
                "fraudpipe_scorer_messages_consumed_total",
            ):
                found[sample.name] = sample.value
            elif sample.name.startswith("fraudpipe_scorer_dead_letters_total"):
                found["dead_letters"] = found.get("dead_letters", 0.0) + sample.value
            elif sample.name == "fraudpipe_scorer_stage_seconds_sum":
                found[f"stage:{sample.labels['stage']}"] = sample.value
    return found


def log_events(path: Path) -> Iterator[dict[str, object]]:
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def held_partitions(path: Path) -> set[int]:
    """The partitions a scorer holds, after its assignment log lines so far."""
    held: set[int] = set()
    for event in log_events(path):
        parts = event.get("partitions")
        if not isinstance(parts, list):
            continue
        if event.get("event") == ASSIGNMENT_EVENTS[0]:
            held.update(parts)
        elif event.get("event") in ASSIGNMENT_EVENTS[1:]:
            held.difference_update(parts)
    return held


def event_time(event: dict[str, object]) -> float:
    """A log event's time (epoch seconds)."""
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def last_event(logs: list[Path], names: tuple[str, ...]) -> float:
    """The time of the latest of these events over the logs (each log must have one)."""
    latest = 0.0
    for path in logs:
        times = [event_time(e) for e in log_events(path) if e.get("event") in names]
        if not times:
            raise SystemExit(f"{path.name}: no {names[0]!r} line")
        latest = max(latest, max(times))
    return latest


def wait_until_settled(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Every partition held by exactly one scorer, each scorer holding some, for 2 s."""
    deadline = time.monotonic() + 600
    stable_since, last = 0.0, None
    while True:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit(f"the scorers did not settle in one group; see {logs[0].parent}")
        held = [held_partitions(path) for path in logs]
        owned = [p for h in held for p in h]
        ok = len(owned) == PARTITIONS == len(set(owned)) and all(
            h or len(logs) > PARTITIONS for h in held
        )
        state = tuple(sorted(h) for h in held)
        if not ok or state != last:
            stable_since, last = time.monotonic(), state
        elif time.monotonic() - stable_since >= 2.0:
            return
        time.sleep(0.2)


@contextmanager
def hidden_backlog(
    settings: Settings, topic: str, txn_id: str, values: list[bytes], keys: list[bytes]
) -> Iterator[Producer]:
    """The messages produced in one open transaction: read_committed readers see them only
    once the caller commits it (`commit_transaction`); aborted if the block fails first."""
    producer = Producer(
        {
            **client_config(settings, "admin"),
            "transactional.id": txn_id,
            "transaction.timeout.ms": 600_000,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
        }
    )
    producer.init_transactions(60)
    producer.begin_transaction()
    committed = False
    try:
        stream.queue_all(producer, topic, values, keys)
        assert producer.flush(120) == 0
        yield producer
        committed = True
    finally:
        if not committed:
            producer.abort_transaction(60)


def output_count(settings: Settings, start: dict[int, int]) -> tuple[int, int]:
    """(records, distinct keys) on the predictions topic after offsets `start`, as a
    read_committed reader sees them."""
    consumer = Consumer(
        {
            **client_config(settings, "admin"),
            "group.id": f"{settings.consumer_group}-count",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    topic = settings.topic_predictions
    consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    pending, records, ids = set(start), 0, set()
    deadline = time.monotonic() + 600
    try:
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1.0):
                err = message.error()
                if err is None:
                    records += 1
                    ids.add(message.key())
                elif err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
    finally:
        consumer.close()
    if pending:
        raise SystemExit(f"the predictions topic was not read to its end ({pending} left)")
    return records, len(ids)


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = Consumer(
        {**client_config(settings, "admin"), "group.id": f"{settings.consumer_group}-count"}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1] for p in partitions
        }
    finally:
        consumer.close()


def prediction_rows(settings: Settings) -> tuple[int, int]:
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT transaction_id) FROM predictions"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@dataclass
class ScaleBench:
    settings: Settings
    unique: str
    client: SchemaRegistryClient
    txs: stream.Transactions
    plan: Plan
    logs: Path
    postgres: int
    broker: int
    runs: int = field(default=0)

    def measure(self, processes: int) -> Result:
        s, n = self.settings, len(self.txs)
        index, self.runs = self.runs, self.runs + 1
        name = f"bench.{self.unique}.run{index}-n{processes}"
        topic = f"{name}.transactions"
        group = f"{s.consumer_group}-run{index}-n{processes}"
        stream.create_topic(s, topic, PARTITIONS)
        values, keys = stream.avro_messages(
            self.client, s.model_copy(update={"topic_transactions": topic}), self.txs
        )
        if index == 0:
            stream.check_encoding(self.client, topic, values)
        stream.forget_predictions(s)
        before = end_offsets(s, s.topic_predictions)
        console.print(f"{procs(processes)}: {n:,} messages hidden on {topic} ...")
        with hidden_backlog(s, topic, f"{name}.backlog", values, keys) as backlog:
            result = self._run_scorers(processes, topic, group, backlog)
        rows, distinct = prediction_rows(s)
        records, record_keys = output_count(s, before)
        counts = {
            "prediction rows": rows,
            "distinct transaction ids": distinct,
            "consumed by the scorers": sum(result.shares),
            "read_committed records": records,
            "distinct record keys": record_keys,
        }
        wrong = {k: v for k, v in counts.items() if v != n}
        result.counts = (
            "yes" if not wrong else "NO: " + ", ".join(f"{k} {v:,}" for k, v in wrong.items())
        )
        stream.delete_topics(AdminClient(client_config(s, "admin")), f"{name}.")
        return result

    def _run_scorers(self, processes: int, topic: str, group: str, backlog: Producer) -> Result:
        s, n = self.settings, len(self.txs)
        env = os.environ | stream._env(s, topic, group)
        paths = [self.logs / f"{group}-{i}.log" for i in range(processes)]
        ports = [free_port() for _ in range(processes)]
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        spawned = time.time()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for path, port in zip(paths, ports, strict=True):
                args = [sys.executable, "-m", "consumers.scorer", "--metrics-port", str(port),
                        "--idle-exit", str(self.plan.idle_exit_s)]  # fmt: skip
                with path.open("wb") as out:
                    procs.append(
                        subprocess.Popen(
                            args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
                        )
                    )
            wait_until_settled(procs, paths)
            loaded = last_event(paths, ("serving model loaded",))
            settled = last_event(paths, ASSIGNMENT_EVENTS)
            pids = [p.pid for p in procs]
            with Sampler(pids, self.postgres, self.broker, s.pg_database) as sampler:
                exposed = time.monotonic()
                backlog.commit_transaction(60)
                final = self._wait_until_scored(procs, ports, n)
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                for p in procs:
                    if p.wait(timeout=300) != 0:
                        raise SystemExit(f"a scorer process failed; see {self.logs}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        first, last, shares = stream._commit_window(paths)
        if first < exposed:
            raise SystemExit("a scorer consumed before the backlog's transaction committed")
        batches = 0
        for path in paths:
            for event in log_events(path):
                if event.get("event") == "scorer stopped":
                    batches += int(str(event["micro_batches"]))
        threads = [sampler.seconds(k, first, last) for k in sampler.keys("t:")]
        scorer = sampler.summed("p:", first, last)
        machine = sampler.seconds("total", first, last)
        busy = sampler.seconds("busy", first, last)
        life = (children_after.ru_utime + children_after.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime
        )
        return Result(
            processes=processes,
            messages=n,
            window_s=last - first,
            startup_s=loaded - spawned,
            join_s=settled - loaded,
            shares=shares,
            scorer_s=scorer,
            scorer_rdk_s=sum(sampler.seconds(k, first, last) for k in sampler.rdk_threads),
            busiest_thread_s=max(threads, default=0.0),
            postgres_s=sampler.postgres_seconds(first, last),
            postgres_other_s=sampler.other_databases(first, last),
            broker_s=sampler.seconds("broker", first, last),
            busy_s=busy,
            busy_share=busy / machine if machine else 0.0,
            scorer_life_s=life,
            stage_s={st: sum(f.get(f"stage:{st}", 0.0) for f in final) for st in stream.STAGES},
            micro_batches=batches,
            counts="",
        )

    def _wait_until_scored(
        self, procs: list[subprocess.Popen[bytes]], ports: list[int], n: int
    ) -> list[dict[str, float]]:
        """Scrape the scorers until all `n` messages are scored (or progress stops for 60 s);
        their final counters."""
        last: list[dict[str, float]] = [{} for _ in ports]
        progress, progress_at = -1.0, time.monotonic()
        while True:
            time.sleep(1.0)
            for i, port in enumerate(ports):
                found = scrape(port)
                if found is not None:
                    last[i] = found
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a scorer stopped before the backlog was scored; see {self.logs}")
            done = sum(
                f.get("fraudpipe_scorer_transactions_scored_total", 0.0)
                + f.get("dead_letters", 0.0)
                for f in last
            )
            if done >= n:
                return last
            if done != progress:
                progress, progress_at = done, time.monotonic()
            elif time.monotonic() - progress_at > 60:
                console.print(f"[red]no progress for 60 s at {done:,.0f} of {n:,}[/]")
                return last


# -- report ------------------------------------------------------------------------------------


def report(results: list[Result], mode: str) -> None:
    cores = os.cpu_count() or 1
    table = Table(
        title=f"scale-out: scorer processes on {PARTITIONS} partitions, one backlog each "
        f"({results[0].messages:,} messages), {mode}, {cores} cores"
    )
    for col in ("processes", "tx/s", "window s", "scorer CPU s/100k", "(with start-up)",
                "PostgreSQL CPU s/100k", "broker CPU s/100k", "rest of machine s/100k",
                "machine busy", "start-up s", "join s", "per-process messages",
                "counts ok"):  # fmt: skip
        table.add_column(col, justify="left" if col == "counts ok" else "right")
    for r in results:
        table.add_row(
            str(r.processes), f"{r.rate:,.0f}", f"{r.window_s:.2f}",
            f"{r.per_100k(r.scorer_s):.2f}", f"{r.per_100k(r.scorer_life_s):.2f}",
            f"{r.per_100k(r.postgres_s):.2f}", f"{r.per_100k(r.broker_s):.2f}",
            f"{r.per_100k(r.rest_s):.2f}", f"{r.busy_share:.0%}", f"{r.startup_s:.1f}",
            f"{r.join_s:.1f}", " / ".join(f"{x:,}" for x in r.shares), r.counts,
        )  # fmt: skip
    console.print(table)
    profile = Table(
        title="profile in the window: cores used, and where the micro-batches' time goes"
    )
    for col in ("processes", "interpreter / scorer", "librdkafka / scorer", "top thread",
                "PostgreSQL", "other dbs' backends", "broker", "rest", "micro-batches",
                *(f"{st} ms" for st in stream.STAGES), "loop busy", "writers busy",
                "publisher busy"):  # fmt: skip
        profile.add_column(col, justify="right")
    for r in results:
        per_batch = {st: 1000 * r.stage_s[st] / max(1, r.micro_batches) for st in stream.STAGES}
        profile.add_row(
            str(r.processes), f"{r.python_cores_per_process:.2f}",
            f"{r.cores(r.scorer_rdk_s) / r.processes:.2f}", f"{r.cores(r.busiest_thread_s):.2f}",
            f"{r.cores(r.postgres_s):.2f}", f"{r.cores(r.postgres_other_s):.2f}",
            f"{r.cores(r.broker_s):.2f}", f"{r.cores(r.rest_s):.2f}", f"{r.micro_batches:,}",
            *(f"{per_batch[st]:.1f}" for st in stream.STAGES),
            f"{r.loop_share:.0%}", f"{r.write_share:.0%}", f"{r.publish_share:.0%}",
        )  # fmt: skip
    console.print(profile)
    console.print(
        "CPU: seconds per second of the window (1.00 = one core). Interpreter: a "
        "scorer's threads but librdkafka's (consume loop, write and publish stages, and the "
        "numpy/libpq work they call). PostgreSQL: every process of the server; other "
        "databases' backends are other work on it. Stage ms: per micro-batch. Loop busy: "
        f"decode + score over the window; writers busy: write over {WRITERS} writers × window; "
        "publisher busy: publish + commit over the window.",
        highlight=False,
    )
    console.print(f"limit: {limit_statement(results, cores)}", highlight=False)


def procs(n: int) -> str:
    return f"{n} process" if n == 1 else f"{n} processes"


def limit_statement(results: list[Result], cores: int) -> str:
    """What limits the curve, read off the measurements (not assumed)."""
    ordered = sorted(results, key=lambda r: r.processes)
    low, high = ordered[0], ordered[-1]

    def who(r: Result) -> str:
        used = {"scorers": r.scorer_s, "PostgreSQL": r.postgres_s, "broker": r.broker_s,
                "other databases": r.postgres_other_s, "rest": r.rest_s}  # fmt: skip
        return ", ".join(f"{k} {r.cores(v):.2f}" for k, v in used.items())

    stages = {
        "the consume loop (decode + score: the process's own CPU)": low.loop_share,
        "the writers (PostgreSQL)": low.write_share,
        "the publisher (Kafka transaction: the broker)": low.publish_share,
    }
    stage, stage_share = max(stages.items(), key=lambda kv: kv[1])
    py = low.python_cores_per_process
    saturated = [r for r in ordered if r.busy_share >= 0.9]
    scale = high.rate / low.rate
    evidence = []
    if high.processes != low.processes:
        evidence.append(
            f"{low.processes} → {high.processes} processes: ×{scale:.2f} tx/s "
            f"({low.rate:,.0f} → {high.rate:,.0f})"
        )
    gil = py >= 0.85
    evidence.append(
        f"at {procs(low.processes)} a scorer's interpreter threads use {py:.2f} of a core"
        + (" (CPU-bound behind its GIL)" if gil else "")
        + f" and its busiest stage is {stage}, busy {stage_share:.0%} of the window"
    )
    if saturated:
        first = saturated[0]
        evidence.append(
            f"from {procs(first.processes)} the machine is {first.busy_share:.0%} busy "
            f"(cores: {who(first)})"
        )
    else:
        evidence.append(
            f"the machine is at most {max(r.busy_share for r in ordered):.0%} busy "
            f"(at {high.processes}: {who(high)})"
        )
    for name, pick in (("PostgreSQL", "postgres_s"), ("the broker", "broker_s")):
        used = max(r.cores(getattr(r, pick)) for r in ordered)
        if used >= 0.9:
            evidence.append(f"{name} alone uses up to {used:.2f} of a core")
    if high.processes != low.processes:
        growth = high.per_100k(high.scorer_s) / low.per_100k(low.scorer_s) - 1
        if abs(growth) >= 0.1:
            evidence.append(
                f"scorer CPU per 100k {growth:+.0%} from {low.processes} to {high.processes} "
                f"processes (the same work costs {'more' if growth > 0 else 'less'} CPU)"
            )
    rest = max(r.cores(r.rest_s) for r in ordered)
    other_db = max(r.cores(r.postgres_other_s) for r in ordered)
    if rest >= 0.2 or other_db >= 0.1:
        evidence.append(
            f"other work shared the machine: up to {rest:.2f} of a core outside the pipeline "
            f"and {other_db:.2f} in other databases' PostgreSQL backends"
        )

    ideal = high.processes / low.processes
    shortest = min(r.window_s for r in ordered)
    if shortest < MIN_WINDOW_S:
        verdict = (
            f"none read: a window of {shortest:.1f} s (a few micro-batches) is too short to "
            f"tell; use a backlog that lasts ≥ {MIN_WINDOW_S:.0f} s"
        )
    elif high.processes != low.processes and scale >= 0.8 * ideal:
        verdict = f"none yet: the curve scales (×{scale:.2f} for ×{ideal:.0f} processes)"
        if high.busy_share >= 0.9:
            verdict += f", and the machine's {cores} cores are now saturated: the next limit"
    elif saturated:
        verdict = f"the machine's {cores} cores, saturated from {procs(saturated[0].processes)}"
        if gil and saturated[0].processes > low.processes:
            verdict += f" (at {procs(low.processes)}: each process's GIL)"
    elif stage_share >= 0.85:
        verdict = {
            "the consume loop (decode + score: the process's own CPU)": "each process's GIL",
            "the writers (PostgreSQL)": "PostgreSQL",
            "the publisher (Kafka transaction: the broker)": "the broker",
        }[stage]
    else:
        verdict = "no resource is saturated (the stages wait on one another)"
    said = "; ".join(evidence)
    return f"{verdict}. {said[:1].upper()}{said[1:]}."


# -- the run -----------------------------------------------------------------------------------


def run(plan: Plan) -> None:
    base = get_settings()
    unique = uuid.uuid4().hex[:8]
    postgres, broker = read_pid("postgres"), read_pid("kafka")
    console.print(
        f"PostgreSQL: pid {postgres} ({describe_pid(postgres)}) and its children; "
        f"broker: pid {broker} ({describe_pid(broker)}) and its children"
    )
    results: list[Result] = []
    with scratch_database(base, prefix="fraudpipe_bench") as db:
        settings = stream.bench_settings(db, unique)
        console.print(f"loading the ULB dataset into {settings.pg_database} ...")
        ingest(settings, UlbSource(settings))
        with stream.kafka_and_registry(settings, unique) as client:
            console.print("training and registering the bench model ...")
            with stream.registered_model(settings), tempfile.TemporaryDirectory() as tmp:
                add_synthetic_days(settings, plan.messages, plan.synthetic_days)
                txs = newest(settings, plan.messages)
                used = np.unique(txs.batch_codes).tolist()
                sources = sorted({txs.batch_ids[i].rsplit(":", 1)[0] for i in used})
                console.print(f"backlog: {len(txs):,} transactions from {', '.join(sources)}")
                logs = plan.keep_logs or Path(tmp)
                logs.mkdir(parents=True, exist_ok=True)
                bench = ScaleBench(settings, unique, client, txs, plan, logs, postgres, broker)
                try:
                    for processes in plan.processes:
                        results.append(bench.measure(processes))
                        if results[-1].counts != "yes":
                            raise SystemExit(
                                f"{procs(processes)}: counts are not exact: {results[-1].counts}"
                            )
                finally:
                    if results:
                        mode = (
                            "output transactions ON"
                            if settings.scorer_exactly_once
                            else "output transactions off"
                        )
                        report(results, mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500_000, help="backlog per process count")
    parser.add_argument("--processes", default="1,2,4", help="process counts, e.g. 1,2,4")
    parser.add_argument(
        "--synthetic-days",
        type=int,
        default=0,
        help="ingest at least this many synthetic days (more if --messages needs them)",
    )
    parser.add_argument(
        "--idle-exit", type=float, default=120.0, help="the scorers' idle exit (a backstop)"
    )
    parser.add_argument("--logs", type=Path, help="keep the scorers' logs in this directory")
    args = parser.parse_args()
    configure_logging(level=logging.WARNING)
    processes = tuple(int(x) for x in args.processes.split(","))
    run(Plan(args.messages, processes, args.synthetic_days, args.idle_exit, args.logs))


if __name__ == "__main__":
    main()
