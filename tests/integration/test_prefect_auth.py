"""Prefect's API answers only with the server's login (PREFECT_SERVER_API_AUTH_STRING).

A run's parameters and environment overrides reach the worker, which runs next to `.env`:
nobody without the login may create, read or start anything.
"""

from __future__ import annotations

import httpx
import pytest

from fraudpipe.config import Settings

pytestmark = pytest.mark.integration


def _filter(settings: Settings, auth: tuple[str, str] | None) -> int:
    answer = httpx.post(
        f"{settings.prefect_api_url}/deployments/filter", json={"limit": 1}, auth=auth, timeout=30
    )
    return answer.status_code


def test_the_api_refuses_anonymous_and_wrong_logins_and_takes_the_pipelines(
    stack: Settings,
) -> None:
    assert _filter(stack, None) == 401
    assert _filter(stack, (stack.prefect_api_user, "not-the-password")) == 401
    assert _filter(stack, ("someone-else", stack.prefect_api_password.get_secret_value())) == 401
    assert (
        _filter(stack, (stack.prefect_api_user, stack.prefect_api_password.get_secret_value()))
        == 200
    )


def test_an_anonymous_client_cannot_start_a_run(stack: Settings) -> None:
    answer = httpx.post(
        f"{stack.prefect_api_url}/flow_runs/",
        json={"flow_id": "00000000-0000-0000-0000-000000000000", "parameters": {}},
        timeout=30,
    )
    assert answer.status_code == 401
