"""Outages made by the tests: a TCP relay to a real service that can be cut and restored, and
a scorer run in a thread.

The shared services are never stopped: a component under test reaches one through a relay the
test owns, and the outage is the relay dropping every connection and refusing new ones for a
while. From the component's side that is exactly a service that went away and came back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from fraudpipe.config import Settings
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import ScoringService


class Relay:
    """A TCP relay to a service that can be cut (connections dropped, new ones refused)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @classmethod
    def to_url(cls, url: str) -> tuple[Relay, str]:
        """A relay to the service at `url`, and `url` as seen through it."""
        parts = urlsplit(url)
        relay = cls((parts.hostname or "127.0.0.1", parts.port or 80))
        return relay, parts._replace(netloc=f"127.0.0.1:{relay.port}").geturl()

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            for s in self._sockets:
                # shutdown, not close: it wakes the pumps and both ends see the connection end
                # (the server then rolls back the interrupted micro-batch's transaction).
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()  # the database is "down"
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):  # already closed by the other pump
                    s.shutdown(socket.SHUT_RDWR)


class ScorerThread:
    """A scorer service run in a thread; whatever ends it is kept for the test to check."""

    def __init__(self, settings: Settings, options: ScoringOptions) -> None:
        self.service = ScoringService(settings, options)
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.service.run()
        except BaseException as exc:
            self.errors.append(exc)

    def stop(self) -> None:
        """Ask the scorer to finish, and wait for its thread."""
        self.service.stop()
        self.thread.join(timeout=120)

    def wait_until(self, done: Callable[[], bool], seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline and not self.errors, self.errors
            time.sleep(0.05)
