"""Who may open the dashboard: anyone on this machine, or whoever knows its password.

On loopback the dashboard is as private as the machine. Beyond it (``--address 0.0.0.0``, a
container, a cluster) it shows nothing until the viewer gives `Settings.dashboard_password`, and
without one it does not start: `require_login_beyond_loopback` refuses, in `fraudpipe
dashboard` and again inside the app (for ``streamlit run`` started by hand).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Final

from fraudpipe.config import Settings
from fraudpipe.errors import ConfigurationError

_LOOPBACK_NAMES: Final = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def is_loopback(address: str) -> bool:
    """Whether a listen address serves this machine alone (127.0.0.0/8, ::1, localhost).

    An empty address is every interface to Streamlit, so it is not loopback.
    """
    host = address.strip().strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def login_required(settings: Settings) -> bool:
    """A password is set: every viewer logs in, wherever the dashboard listens."""
    password = settings.dashboard_password
    return password is not None and bool(password.get_secret_value())


def require_login_beyond_loopback(settings: Settings, address: str) -> None:
    """Refuse to serve beyond loopback without a password.

    Raises:
        ConfigurationError: `address` is not loopback and no password is set.
    """
    if not is_loopback(address) and not login_required(settings):
        raise ConfigurationError(
            f"the dashboard would listen on {address or 'every interface'} with no login: set "
            "FRAUDPIPE_DASHBOARD_PASSWORD in .env, or listen on 127.0.0.1"
        )


def password_matches(settings: Settings, attempt: str) -> bool:
    """Compare in constant time (no timing hint of how much of the password was right)."""
    expected = settings.dashboard_password
    if expected is None or not login_required(settings):
        return True
    return hmac.compare_digest(attempt.encode(), expected.get_secret_value().encode())
