"""CPU seconds of the stack's processes and of the whole machine, from /proc (Linux).

What the benchmarks use to say where a run's CPU went: `Sampler` samples the counters of some
processes (with their threads), of PostgreSQL's process tree (backends of other databases
apart), of the Kafka broker's tree and of the machine, every `SAMPLE_EVERY_S`, and interpolates
them to a measured window's ends.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
RUN_DIR: Final = REPO / ".stack" / "run"
SAMPLE_EVERY_S: Final = 0.25
TICKS: Final = os.sysconf("SC_CLK_TCK")


def _stat(path: Path) -> tuple[str, list[str]] | None:
    """(comm, fields from the 3rd on) of a /proc stat file; None once the task is gone."""
    try:
        text = path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    close = text.rindex(")")
    return text[text.index("(") + 1 : close], text[close + 2 :].split()


def _ticks(fields: list[str], children: bool = True) -> int:
    """utime + stime (+ cutime + cstime: its reaped children) of a stat line's fields."""
    own = int(fields[11]) + int(fields[12])
    return own + int(fields[13]) + int(fields[14]) if children else own


def read_pid(name: str) -> int:
    return int((RUN_DIR / f"{name}.pid").read_text().split()[0])


def describe_pid(pid: int) -> str:
    found = _stat(Path(f"/proc/{pid}/stat"))
    if found is None:
        raise SystemExit(f"process {pid} is not running: is the stack up?")
    return found[0]


def process_table() -> dict[int, tuple[int, int]]:
    """pid → (ppid, CPU ticks with reaped children) of every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = _stat(Path(entry.path) / "stat")
            if found is not None:
                table[int(entry.name)] = (int(found[1][1]), _ticks(found[1]))
    return table


def backend_database(pid: int) -> str | None:
    """The database a PostgreSQL backend (or autovacuum worker) serves, from its title
    (``postgres: user database host(port) state``); None for the server's own processes."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return None
    parts = title.split()
    if parts[:1] != ["postgres:"]:
        return None
    if len(parts) >= 4 and ("(" in parts[3] or parts[3] == "[local]"):
        return parts[2]
    if parts[1:3] == ["autovacuum", "worker"] and len(parts) >= 4:
        return parts[3]
    return None


def tree_ticks(table: dict[int, tuple[int, int]], root: int) -> int:
    """CPU ticks of `root` and every live descendant; those reaped are in their parents'."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all cores since boot (guest time is inside user time)."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Sampler:
    """Samples CPU counters in a thread; `at(key, t)` interpolates them to a monotonic time.

    Keys: ``p:<pid>`` (a scorer process), ``t:<pid>:<tid>`` (one of its threads, with
    ``rdk:`` kept in `rdk_threads`), ``postgres`` (every process of the server),
    ``o:<pid>`` (one of its backends of a database other than `database`), ``broker``,
    ``busy``, ``total`` (ticks). A key keeps its last value after its task is gone.
    """

    def __init__(self, scorers: list[int], postgres: int, broker: int, database: str) -> None:
        self.scorers = scorers
        self.postgres = postgres
        self.broker = broker
        self.database = database
        self._databases: dict[int, str | None] = {}
        self.times: list[float] = []
        self.samples: list[dict[str, int]] = []
        self.rdk_threads: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self.sample()  # before the window opens
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.sample()

    def sample(self) -> None:
        values = dict(self.samples[-1]) if self.samples else {}
        for pid in self.scorers:
            found = _stat(Path(f"/proc/{pid}/stat"))
            if found is None:
                continue
            values[f"p:{pid}"] = _ticks(found[1], children=False)
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except FileNotFoundError:
                continue
            for tid in tasks:
                thread = _stat(Path(f"/proc/{pid}/task/{tid}/stat"))
                if thread is not None:
                    key = f"t:{pid}:{tid}"
                    values[key] = _ticks(thread[1], children=False)
                    if thread[0].startswith("rdk:"):
                        self.rdk_threads.add(key)
        table = process_table()
        values["postgres"] = tree_ticks(table, self.postgres)
        for pid, (ppid, ticks) in table.items():
            if ppid == self.postgres:
                if pid not in self._databases:
                    self._databases[pid] = backend_database(pid)
                if self._databases[pid] not in (None, self.database):
                    values[f"o:{pid}"] = ticks
        values["broker"] = tree_ticks(table, self.broker)
        values["busy"], values["total"] = machine_ticks()
        self.times.append(time.monotonic())
        self.samples.append(values)

    def at(self, key: str, t: float) -> float:
        i = bisect.bisect_left(self.times, t)
        if i == 0:
            return float(self.samples[0].get(key, 0))
        if i == len(self.times):
            return float(self.samples[-1].get(key, 0))
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.samples[i - 1].get(key, 0), self.samples[i].get(key, 0)
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def seconds(self, key: str, start: float, end: float) -> float:
        """CPU seconds of `key` between two monotonic times."""
        return (self.at(key, end) - self.at(key, start)) / TICKS

    def postgres_seconds(self, start: float, end: float) -> float:
        """PostgreSQL's CPU seconds at the bench's service: every process of the server but
        the backends of other databases (other work on a shared server, `other_databases`)."""
        return self.seconds("postgres", start, end) - self.other_databases(start, end)

    def other_databases(self, start: float, end: float) -> float:
        return self.summed("o:", start, end)

    def summed(self, prefix: str, start: float, end: float) -> float:
        """CPU seconds of every key with `prefix` (``p:``: all the sampled processes)."""
        return sum(self.seconds(k, start, end) for k in self.keys(prefix))

    def keys(self, prefix: str) -> list[str]:
        return [k for k in self.samples[-1] if k.startswith(prefix)]
