"""infra/compose.yml describes the same stack as the settings: names, ports and variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from fraudpipe.config import Settings

pytestmark = pytest.mark.unit

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _published_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[0].rsplit(":", 1)[-1]) for p in service.get("ports", [])}


def test_every_service_of_the_local_stack_runs_in_compose_too(compose: dict[str, Any]) -> None:
    from fraudpipe.stack.manager import services

    native = {
        service.name for service in services(Settings.model_construct(scorers=1, api_enabled=True))
    }
    assert len(native) == 14
    renamed = {"scorers": "scorer"}  # one service with replicas
    assert {renamed.get(name, name) for name in native} <= set(compose["services"])
    assert {"dashboard", "setup"} <= set(compose["services"])


def test_published_ports_match_default_settings(compose: dict[str, Any]) -> None:
    defaults = Settings.model_fields
    services = compose["services"]
    kafka_port = int(str(defaults["kafka_bootstrap_servers"].default).rsplit(":", 1)[1])
    expected = {
        "postgres": defaults["pg_port"].default,
        "kafka": kafka_port,
        "registry": urlsplit(str(defaults["schema_registry_url"].default)).port,
        "mlflow": urlsplit(str(defaults["mlflow_tracking_uri"].default)).port,
        "prefect": urlsplit(str(defaults["prefect_api_url"].default)).port,
        "prometheus": defaults["prometheus_port"].default,
        "pushgateway": defaults["pushgateway_port"].default,
        "api": defaults["api_port"].default,
    }
    for name, port in expected.items():
        assert port in _published_ports(services[name]), (name, port)
    assert defaults["registry_port"].default == expected["registry"]
    assert defaults["mlflow_port"].default == expected["mlflow"]
    assert defaults["prefect_port"].default == expected["prefect"]


def test_every_variable_is_a_setting(compose: dict[str, Any]) -> None:
    names = set(re.findall(r"\$\{(FRAUDPIPE_[A-Z0-9_]+)", COMPOSE.read_text()))
    assert names, "compose.yml should take its values from FRAUDPIPE_* variables"
    fields = {f"FRAUDPIPE_{name.upper()}" for name in Settings.model_fields}
    assert names <= fields, names - fields


def test_secrets_are_required_not_defaulted() -> None:
    secrets = re.findall(
        r"(?<!\$)\$\{(FRAUDPIPE_[A-Z_]*(?:PASSWORD|SECRET|API_KEYS))([^}]*)\}", COMPOSE.read_text()
    )
    assert secrets
    for secret in secrets:
        assert secret[1].startswith(":?"), f"{secret[0]} must be required, not defaulted"
