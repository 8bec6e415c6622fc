"""Who may open the dashboard: loopback is private, anything else needs the password."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from fraudpipe.config import Settings
from fraudpipe.dashboard.access import (
    is_loopback,
    login_required,
    password_matches,
    require_login_beyond_loopback,
)
from fraudpipe.errors import ConfigurationError


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["0.0.0.0", "", "::", "10.0.0.5", "dashboard.example"])
def test_addresses_beyond_loopback(address: str) -> None:
    assert not is_loopback(address)


def test_beyond_loopback_without_a_password_is_refused(settings: Settings) -> None:
    open_settings = settings.model_copy(update={"dashboard_password": None})
    with pytest.raises(ConfigurationError, match="FRAUDPIPE_DASHBOARD_PASSWORD"):
        require_login_beyond_loopback(open_settings, "0.0.0.0")
    require_login_beyond_loopback(open_settings, "127.0.0.1")
    blank = settings.model_copy(update={"dashboard_password": SecretStr("")})
    assert not login_required(blank)
    with pytest.raises(ConfigurationError):
        require_login_beyond_loopback(blank, "0.0.0.0")


def test_with_a_password_only_that_password_opens_it(settings: Settings) -> None:
    guarded = settings.model_copy(update={"dashboard_password": SecretStr("s3cret-view")})
    require_login_beyond_loopback(guarded, "0.0.0.0")
    assert login_required(guarded)
    assert password_matches(guarded, "s3cret-view")
    assert not password_matches(guarded, "s3cret-vie")
    assert not password_matches(guarded, "")
