"""fraudpipe's Prometheus rules: `promtool check rules` accepts them, and every alert has a
`promtool test rules` case that fires (and one that stays quiet where it matters)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("promtool") is None,
        reason="needs promtool (Debian's prometheus package): run `bash infra/local/bootstrap.sh`",
    ),
]

PROMETHEUS = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
RULES = PROMETHEUS / "rules" / "fraudpipe.yml"
TESTS = PROMETHEUS / "tests" / "fraudpipe_test.yml"


def _promtool(*args: str) -> str:
    done = subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid() -> None:
    assert "SUCCESS" in _promtool("check", "rules", str(RULES))


def test_every_alert_has_a_unit_test_and_they_pass() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = set(re.findall(r"alertname: (\w+)", TESTS.read_text()))
    assert alerts and alerts <= tested, f"alerts without a promtool test: {alerts - tested}"
    assert "SUCCESS" in _promtool("test", "rules", str(TESTS))
