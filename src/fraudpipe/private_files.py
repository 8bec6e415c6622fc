"""Files that hold a secret (a password, a hash of one): readable by their owner alone."""

from __future__ import annotations

from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 600, never readable by others even for a moment.

    The file is created (or narrowed) to 600 before the text goes in, and the parent directory
    is created if missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
