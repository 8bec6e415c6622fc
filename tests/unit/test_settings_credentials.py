"""`Settings.credentials`: every principal each adapter names resolves to its own pair."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import SecretStr

from fraudpipe.adapters.avro.serde import RegistryRole
from fraudpipe.adapters.kafka.security import Principal
from fraudpipe.adapters.mlflow.principals import MlflowPrincipal
from fraudpipe.adapters.postgres.connect import Role
from fraudpipe.config import Service, Settings

pytestmark = pytest.mark.unit

PRINCIPALS: dict[Service, tuple[str, ...]] = {
    "pg": get_args(Role),
    "kafka": get_args(Principal),
    "registry": get_args(RegistryRole),
    "mlflow": get_args(MlflowPrincipal),
}


@pytest.fixture
def settings() -> Settings:
    # Each required field (every one a password) gets a value of its own.
    required = [name for name, field in Settings.model_fields.items() if field.is_required()]
    return Settings(
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings init option
        **{name: SecretStr(f"secret of {name}") for name in required},
    )


@pytest.mark.parametrize(
    ("service", "principal"),
    [(service, p) for service, principals in PRINCIPALS.items() for p in principals],
)
def test_each_principal_gets_its_own_user_and_password(
    settings: Settings, service: Service, principal: str
) -> None:
    user, password = settings.credentials(service, principal)
    assert user == getattr(settings, f"{service}_{principal}_user")
    assert password.get_secret_value() == f"secret of {service}_{principal}_password"


def test_every_service_is_covered_and_an_unknown_principal_is_refused(
    settings: Settings,
) -> None:
    assert set(PRINCIPALS) == set(get_args(Service))
    with pytest.raises(KeyError, match="no kafka principal named 'root'"):
        settings.credentials("kafka", "root")
