"""The pipeline's MLflow users and their grants, made by the admin; safe to repeat.

Users are created, or have their password set again from the settings (so a changed password
takes effect at the next `provision_users`); grants are upserts on the server. The grants are
on ``*`` (every experiment, every registered model), so models of any name (a test's) need none
of their own. What MLflow's levels cannot express, who moves aliases, `server_auth` decides.
"""

from __future__ import annotations

from typing import Final

import httpx

from fraudpipe.adapters.mlflow.principals import MlflowPrincipal, basic_auth
from fraudpipe.config import Settings
from fraudpipe.errors import AuthenticationRefusedError, ServiceUnavailableError

_TIMEOUT: Final = 10.0
#: Resource type -> level, per principal (MLflow's READ < USE < EDIT < MANAGE).
GRANTS: Final[dict[MlflowPrincipal, dict[str, str]]] = {
    "trainer": {"experiment": "EDIT", "registered_model": "EDIT"},
    # EDIT on experiments: the gate records its decision (promotion.json) in the run.
    "promoter": {"experiment": "EDIT", "registered_model": "EDIT"},
    "reader": {"experiment": "READ", "registered_model": "READ"},
}


def provision_users(settings: Settings) -> None:
    """Create or update the trainer, promoter and reader, and grant each its `GRANTS`.

    Raises:
        ServiceUnavailableError: MLflow is not reachable.
        AuthenticationRefusedError: MLflow refused the admin's credentials.
        httpx.HTTPStatusError: MLflow refused a request.
    """
    url = settings.mlflow_tracking_uri
    with httpx.Client(base_url=url, auth=basic_auth(settings, "admin"), timeout=_TIMEOUT) as admin:
        try:
            if admin.get("/api/2.0/mlflow/users/current").status_code == httpx.codes.UNAUTHORIZED:
                raise AuthenticationRefusedError("MLflow", settings.mlflow_admin_user, "HTTP 401")
            for principal, grants in GRANTS.items():
                user, password = basic_auth(settings, principal)
                _upsert_user(admin, user, password)
                for resource_type, level in grants.items():
                    _grant(admin, user, resource_type, level)
        except httpx.TransportError as exc:
            raise ServiceUnavailableError("MLflow", url) from exc


def _grant(admin: httpx.Client, user: str, resource_type: str, level: str) -> None:
    """Grant `level` on every resource of the type; a grant is made once, so a changed
    level replaces the old grant."""
    grant = {"username": user, "resource_type": resource_type, "resource_id": "*"}
    held = admin.get("/api/3.0/mlflow/users/permissions/get", params=grant)
    held.raise_for_status()
    if held.json().get("permission") == level:
        return
    # Nothing to revoke answers 4xx; the grant below is what must succeed.
    admin.post("/api/3.0/mlflow/users/permissions/revoke", json=grant)
    admin.post(
        "/api/3.0/mlflow/users/permissions/grant", json={**grant, "permission": level}
    ).raise_for_status()


def _upsert_user(admin: httpx.Client, user: str, password: str) -> None:
    found = admin.get("/api/2.0/mlflow/users/get", params={"username": user})
    if found.is_success:
        admin.patch(
            "/api/2.0/mlflow/users/update-password",
            json={"username": user, "password": password},
        ).raise_for_status()
        return
    admin.post(
        "/api/2.0/mlflow/users/create", json={"username": user, "password": password}
    ).raise_for_status()
