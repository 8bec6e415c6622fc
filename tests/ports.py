"""Free loopback ports for the servers a test starts (scorers' metrics, dashboards, brokers)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port free now (the OS picks it; a test binds it right after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports (supervised scorer i serves on +i)."""
    for _ in range(100):
        first = free_port()
        if first + count < 65536 and all(_is_free(first + i) for i in range(count)):
            return first
    raise RuntimeError("no consecutive free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
