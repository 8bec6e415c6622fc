"""Drive Debian's headless Chromium over the DevTools protocol: open a page, wait for a Streamlit
app to finish its run, read what it shows and save a screenshot.

`--screenshot`/`--dump-dom` alone cannot do this: a Streamlit page is drawn after its script runs
on the server and streams elements over a websocket, which Chromium's virtual-time budget does
not wait for. So we poll the DOM until the app reports its script finished and the page stops
changing. The protocol is spoken with `websockets` (already installed with Prefect), so no
browser-automation package is needed.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]

# What the test needs to know about a Streamlit page, read in one round trip.
PROBE = """
(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const main = document.querySelector('[data-testid="stMain"]');
  const texts = (sel) => [...document.querySelectorAll(sel)].map(e => e.innerText.slice(0, 500));
  return JSON.stringify({
    scriptState: app ? app.getAttribute('data-test-script-state') : null,
    connection: app ? app.getAttribute('data-test-connection-state') : null,
    exceptions: texts('[data-testid="stException"]'),
    errors: texts('[data-testid="stAlertContentError"]'),
    warnings: texts('[data-testid="stAlertContentWarning"]'),
    infos: texts('[data-testid="stAlertContentInfo"]'),
    dialogs: texts('[role="dialog"]'),
    pending: document.querySelectorAll(
      '[data-testid="stSkeleton"], [data-testid="stAppSkeleton"], [data-testid="stSpinner"]'
    ).length,
    elements: main ? main.querySelectorAll('[data-testid="stElementContainer"]').length : 0,
    charts: document.querySelectorAll('[data-testid="stPlotlyChart"]').length,
    drawnCharts: document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length,
    title: (main && main.querySelector('h1')) ? main.querySelector('h1').innerText : '',
    text: main ? main.innerText : '',
    height: main ? Math.max(main.scrollHeight, main.firstElementChild.scrollHeight) : 0,
  });
})()
"""


@dataclass
class PageState:
    """What a Streamlit page showed once it settled."""

    url: str
    script_state: str | None
    title: str
    text: str
    elements: int
    charts: int
    height: int
    exceptions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class HeadlessChromium:
    """One headless Chromium with one tab, driven over the DevTools protocol.

    Use as a context manager; the browser process is ended on exit.
    """

    def __init__(self, profile_dir: Path, log_file: Path, width: int = 1400) -> None:
        self.profile_dir = profile_dir
        self.log_file = log_file
        self.width = width
        self._process: subprocess.Popen[bytes] | None = None
        self._ws: ClientConnection | None = None
        self._next_id = 0

    def __enter__(self) -> HeadlessChromium:
        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("chromium not installed: run `bash infra/local/bootstrap.sh`")
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={self.profile_dir}",
                    f"--window-size={self.width},1000",
                    "about:blank",
                ],
                stdout=log,
                stderr=log,
            )
        port = self._devtools_port(timeout=60)
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=15)

    def _devtools_port(self, timeout: float) -> int:
        # Chromium writes the port it picked (for --remote-debugging-port=0) into the profile.
        port_file = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited early; see {self.log_file}")
            if port_file.exists() and port_file.read_text().strip():
                return int(port_file.read_text().splitlines()[0])
            time.sleep(0.2)
        raise RuntimeError(f"chromium did not open its DevTools port; see {self.log_file}")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and wait for its answer (events in between are skipped)."""
        assert self._ws is not None
        self._next_id += 1
        request_id = self._next_id
        self._ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=60))
            if message.get("id") != request_id:
                continue
            if "error" in message:
                raise RuntimeError(f"{method} failed: {message['error']}")
            result: dict[str, Any] = message["result"]
            return result

    def _probe(self) -> dict[str, Any]:
        result = self.call("Runtime.evaluate", expression=PROBE, returnByValue=True)
        value = result["result"].get("value")
        return json.loads(value) if value else {}

    def _set_height(self, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def open_streamlit_page(self, url: str, timeout: float = 90, settle: float = 2.0) -> PageState:
        """Navigate and wait until the app's script finished and the page stopped changing.

        Settled means: the script state is ``notRunning``, nothing is loading (skeletons,
        spinners), every Plotly chart has drawn, and the page looked the same for ``settle`` s.
        """
        self._set_height(1000)
        self.call("Page.navigate", url=url)
        return self.wait_settled(url, timeout, settle)

    def submit_password(self, password: str, button: str, timeout: float = 60) -> PageState:
        """Type into the page's password field, press `button`, and wait for the page to settle.

        Typed as keystrokes (`Input.insertText`), so the app's widget sees a real edit.
        """
        self.type_into("input[type=password]", password)
        return self.press(button, "(after login)", timeout)

    def type_into(self, selector: str, text: str) -> None:
        """Focus the first element matching `selector` and type `text` as keystrokes."""
        self.call(
            "Runtime.evaluate", expression=f"document.querySelector({json.dumps(selector)}).focus()"
        )
        self.call("Input.insertText", text=text)

    def choose(self, option: str) -> None:
        """Click the radio option whose label reads `option`."""
        click = (
            "[...document.querySelectorAll('label')]"
            f".find(l => l.innerText.trim() === {json.dumps(option)}).click()"
        )
        self.call("Runtime.evaluate", expression=click)

    def press(self, button: str, what: str, timeout: float = 60) -> PageState:
        """Click the button reading `button` and wait for the page to settle."""
        click = (
            "[...document.querySelectorAll('button')]"
            f".find(b => b.innerText.trim() === {json.dumps(button)}).click()"
        )
        self.call("Runtime.evaluate", expression=click)
        time.sleep(1.0)  # the rerun starts
        return self.wait_settled(what, timeout, settle=2.0)

    def wait_settled(self, url: str, timeout: float, settle: float) -> PageState:
        """Wait until the app's script finished and the page stopped changing (see above)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            probe = self._probe()
            finished = (
                probe.get("scriptState") == "notRunning"
                and probe.get("pending", 1) == 0
                and probe.get("drawnCharts", 0) >= probe.get("charts", 0)
            )
            fingerprint = (probe.get("elements"), probe.get("charts"), len(probe.get("text", "")))
            if fingerprint != (last.get("elements"), last.get("charts"), len(last.get("text", ""))):
                stable_since = time.monotonic()
            last = probe
            if finished and time.monotonic() - stable_since >= settle:
                break
        else:
            raise TimeoutError(f"{url} did not settle in {timeout} s: last state {last}")
        return PageState(
            url=url,
            script_state=last.get("scriptState"),
            title=last.get("title", ""),
            text=last.get("text", ""),
            elements=int(last.get("elements", 0)),
            charts=int(last.get("charts", 0)),
            height=int(last.get("height", 0)),
            exceptions=list(last.get("exceptions", [])),
            errors=list(last.get("errors", [])),
            warnings=list(last.get("warnings", [])),
            infos=list(last.get("infos", [])),
            dialogs=list(last.get("dialogs", [])),
        )

    def screenshot(self, path: Path, height: int) -> None:
        """Save the page as PNG, with the viewport as tall as the content (capped)."""
        # The app scrolls inside its own container, so a full-page capture would stop at the
        # viewport: make the viewport as tall as the content instead, then let charts re-lay out.
        self._set_height(min(max(height + 120, 900), 12_000))
        time.sleep(1.5)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
