"""infra/local/write-env.sh: a fresh .env gets the example's settings, with a generated value for
every secret .env.example leaves blank, the API's key included; an existing one gets only what it
lacks; both stay 600."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from fraudpipe.serving.keys import ApiKeys

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "infra" / "local" / "write-env.sh"
EXAMPLE = REPO / ".env.example"


def _write_env(target: Path) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), str(target)],
        cwd=REPO,  # the script reads .env.example from there
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _values(env: Path) -> dict[str, str]:
    lines = (line.partition("=") for line in env.read_text().splitlines())
    return {name: value for name, eq, value in lines if eq and not name.startswith("#")}


def _blank_secrets() -> set[str]:
    """The secrets .env.example leaves for make to generate."""
    text = EXAMPLE.read_text()
    return set(re.findall(r"^(FRAUDPIPE_[A-Z_]*(?:PASSWORD|SECRET|_KEYS))=", text, re.M))


def test_a_fresh_env_gets_every_secret_and_a_named_api_key(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    assert "wrote" in _write_env(target)
    assert target.stat().st_mode & 0o777 == 0o600
    values = _values(target)
    wanted = _blank_secrets()
    assert "FRAUDPIPE_API_KEYS" in wanted
    assert wanted <= set(values)
    name, _, key = values["FRAUDPIPE_API_KEYS"].partition("=")
    assert name == "local"
    assert re.fullmatch(r"[A-Za-z0-9]{16,}", key), "a key `serve` accepts (16 characters at least)"
    assert ApiKeys.parse(SecretStr(values["FRAUDPIPE_API_KEYS"])).who(key) == "local"
    generated = [values[name] for name in wanted]
    assert all(generated) and len(set(generated)) == len(generated)
    # Every other setting of the example is copied as it is; its comments are not (Prefect
    # parses this file hundreds of times per import), bar one line that points to them.
    settings = [line for line in EXAMPLE.read_text().splitlines() if re.match("[A-Z]", line)]
    header, *written = target.read_text().splitlines()
    assert header.startswith("#") and ".env.example" in header
    assert len(written) == len(settings)
    for mine, theirs in zip(written, settings, strict=True):
        if mine != theirs:
            assert mine.partition("=")[0] in wanted, mine


def test_an_existing_env_gets_only_the_api_key_it_lacks(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    _write_env(target)
    before = [line for line in target.read_text().splitlines() if "FRAUDPIPE_API_KEYS" not in line]
    target.write_text("\n".join(before) + "\n")
    target.chmod(0o644)

    assert _write_env(target).strip() == f"added 1 generated secret(s) to {target}"
    after = target.read_text().splitlines()
    assert after[: len(before)] == before  # nothing it had changed
    (appended,) = after[len(before) :]
    assert re.fullmatch(r"FRAUDPIPE_API_KEYS=local=[A-Za-z0-9]{16,}", appended)
    assert target.stat().st_mode & 0o777 == 0o600

    # Run again: nothing to add, and keys set by hand stay as they are.
    own = "FRAUDPIPE_API_KEYS=partner=k3y-of-the-partner-0001"
    target.write_text("\n".join([*before, own]) + "\n")
    assert _write_env(target) == ""
    assert target.read_text().splitlines()[-1] == own
