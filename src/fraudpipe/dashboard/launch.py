"""How `fraudpipe dashboard` starts Streamlit: the app's path and the server command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from fraudpipe.errors import ConfigurationError

APP_RELATIVE_PATH: Final = Path("dashboard") / "app.py"


def app_path() -> Path:
    """``dashboard/app.py`` of the checkout this package runs from.

    Raises:
        ConfigurationError: The package is installed without its checkout (e.g. from a wheel).
    """
    path = Path(__file__).resolve().parents[3] / APP_RELATIVE_PATH
    if not path.is_file():
        raise ConfigurationError(
            f"dashboard app not found at {path}: run `fraudpipe dashboard` from a fraudpipe "
            "checkout (uv sync installs the package in editable mode)"
        )
    return path


def streamlit_command(address: str, port: int) -> list[str]:
    """``streamlit run`` for the dashboard on ``address:port``, headless, no usage stats."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
