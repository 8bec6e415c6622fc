"""The dashboard's door: beyond loopback, or with a password set, nothing shows before a login.

`fraudpipe.dashboard.access` decides; this draws the form and keeps the verdict in the viewer's
session. A wrong password costs a second, so guessing is slow.
"""

from __future__ import annotations

import time

import streamlit as st

from fraudpipe.config import Settings
from fraudpipe.dashboard.access import (
    login_required,
    password_matches,
    require_login_beyond_loopback,
)
from fraudpipe.errors import ConfigurationError

_SESSION_KEY = "fraudpipe_logged_in"
_WRONG_PASSWORD_DELAY_S = 1.0


def require_login(settings: Settings) -> None:
    """Return once the viewer may see the dashboard; otherwise draw the form and stop."""
    try:
        require_login_beyond_loopback(settings, str(st.get_option("server.address") or ""))
    except ConfigurationError as exc:
        st.error(str(exc))
        st.stop()
    if not login_required(settings) or st.session_state.get(_SESSION_KEY):
        return
    with st.form("login", clear_on_submit=True):
        st.subheader("fraudpipe")
        attempt = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        if password_matches(settings, attempt):
            st.session_state[_SESSION_KEY] = True
            st.rerun()
        time.sleep(_WRONG_PASSWORD_DELAY_S)
        st.error("Wrong password.")
    st.stop()
