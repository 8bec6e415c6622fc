"""Where the source checkout lives: `prefect.yaml`, `flows/` and `dags/` sit at its root."""

from __future__ import annotations

from pathlib import Path

from fraudpipe.errors import ConfigurationError

#: Files that mark the checkout's root.
_MARKERS = ("prefect.yaml", "pyproject.toml")


def project_root() -> Path:
    """The checkout root holding `prefect.yaml`, `flows/` and `dags/`.

    The package is installed editable from the checkout (`uv sync`), so the root is two levels
    above this file; the current directory is the fallback for other installs.

    Raises:
        ConfigurationError: neither place holds `prefect.yaml` and `pyproject.toml`.
    """
    candidates = (Path(__file__).resolve().parents[2], Path.cwd().resolve())
    for candidate in candidates:
        if all((candidate / marker).is_file() for marker in _MARKERS):
            return candidate
    raise ConfigurationError(
        f"no fraudpipe checkout found at {candidates[0]} or {candidates[1]} "
        "(looked for prefect.yaml and pyproject.toml): run fraudpipe from the repository root"
    )
