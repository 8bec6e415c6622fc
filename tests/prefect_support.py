"""Prefect clients in the test process: the stack's API, logged in as the pipeline."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from fraudpipe.config import Settings


def prefect_api(settings: Settings) -> AbstractContextManager[Any]:
    """Prefect settings, for the block, that reach the stack's server with its login."""
    return temporary_settings(
        {
            PREFECT_API_URL: settings.prefect_api_url,
            PREFECT_API_AUTH_STRING: settings.prefect_auth_string(),
        }
    )
