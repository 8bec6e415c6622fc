"""Free loopback ports for the servers a test starts (scorers' metrics, dashboards, brokers)."""

from __future__ import annotations

import os
import random
import socket

#: Below Linux's ephemeral range (32768-60999 by default). A port the OS picks for a listener
#: lies in that range, where any outgoing connection may take it before the server binds: a
#: `fraudpipe serve` connects to MLflow, Kafka and PostgreSQL before uvicorn binds its port,
#: and once in a few dozen runs one of those connections got it ("address already in use").
_LISTEN_PORTS = range(20_000, 32_768)


def _own_ports() -> range:
    """This pytest process's share of the range: under xdist each worker picks from a slice of
    its own, so two workers never take the same free port between its probe and its bind."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = len(_LISTEN_PORTS) // workers
    return _LISTEN_PORTS[worker * size : (worker + 1) * size]


def free_port() -> int:
    """A loopback port free now, outside the ephemeral range (a test binds it right after)."""
    ports = _own_ports()
    for _ in range(200):
        port = random.choice(ports)  # not a secret
        if _is_free(port):
            return port
    raise RuntimeError("no free port below the ephemeral range")


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports (supervised scorer i serves on +i)."""
    last = _own_ports().stop
    for _ in range(100):
        first = free_port()
        if first + count <= last and all(_is_free(first + i) for i in range(count)):
            return first
    raise RuntimeError("no consecutive free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
