"""MLflow logs everyone in, and only the promotion gate's principal moves the serving alias.

Against the stack's real MLflow server (its basic-auth app, with `server_auth` as its login
check): each principal's client is a plain `MlflowClient` logged in with its credentials, and
every refusal is the server's HTTP answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from scoring_support import champion_model, own_settings

from fraudpipe.adapters.mlflow.principals import MlflowPrincipal, acting_as, basic_auth
from fraudpipe.adapters.mlflow.registry import current_serving_version
from fraudpipe.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def model(stack: Settings) -> Iterator[tuple[Settings, int]]:
    """A registered model of the test's own, its version 1 the champion."""
    settings = own_settings(stack, "mlflowauth")
    with champion_model(settings, seed=5) as version:
        yield settings, version


def _status(
    settings: Settings, principal: MlflowPrincipal, call: Callable[[MlflowClient], object]
) -> int:
    with acting_as(settings, principal):
        try:
            call(MlflowClient(tracking_uri=settings.mlflow_tracking_uri))
        except MlflowException as exc:
            return int(exc.get_http_status_code())
    return 200


def test_nobody_without_a_login_reads_or_writes_anything(model: tuple[Settings, int]) -> None:
    settings, _ = model
    api = f"{settings.mlflow_tracking_uri}/api/2.0/mlflow"
    alias = {"name": settings.model_name, "alias": "champion"}
    assert httpx.get(f"{api}/registered-models/alias", params=alias).status_code == 401
    moved = httpx.post(f"{api}/registered-models/alias", json={**alias, "version": "1"})
    assert moved.status_code == 401
    wrong = ("fraud-promoter", "not-the-password")
    assert (
        httpx.post(
            f"{api}/registered-models/alias", json={**alias, "version": "1"}, auth=wrong
        ).status_code
        == 401
    )


@pytest.mark.parametrize("principal", ["reader", "trainer"])
def test_neither_the_scorers_nor_the_trainers_login_moves_the_alias(
    model: tuple[Settings, int], principal: MlflowPrincipal
) -> None:
    settings, version = model
    name = settings.model_name

    def move(client: MlflowClient) -> None:
        client.set_registered_model_alias(name, "champion", str(version))

    def drop(client: MlflowClient) -> None:
        client.delete_registered_model_alias(name, "champion")

    def sign(client: MlflowClient) -> None:
        client.set_model_version_tag(name, str(version), "artifact_sha256", "0" * 64)

    def delete(client: MlflowClient) -> None:
        client.delete_registered_model(name)

    for call in (move, drop, sign, delete):
        assert _status(settings, principal, call) == 403, call.__name__
    assert current_serving_version(settings) == version  # nothing moved


def test_the_trainers_login_is_refused_through_the_ui_route_too(
    model: tuple[Settings, int],
) -> None:
    settings, version = model
    moved = httpx.post(
        f"{settings.mlflow_tracking_uri}/ajax-api/2.0/mlflow/registered-models/alias",
        json={"name": settings.model_name, "alias": "champion", "version": str(version)},
        auth=basic_auth(settings, "trainer"),
    )
    assert moved.status_code == 403


def test_the_reader_cannot_register_a_version(model: tuple[Settings, int]) -> None:
    settings, _ = model
    source = f"models:/{settings.model_name}/1"

    def register(client: MlflowClient) -> None:
        client.create_model_version(settings.model_name, source)

    assert _status(settings, "reader", register) == 403


def test_the_promoters_login_moves_the_alias_but_deletes_nothing(
    model: tuple[Settings, int],
) -> None:
    settings, version = model
    name = settings.model_name

    def move(client: MlflowClient) -> None:
        client.set_registered_model_alias(name, "champion", str(version))

    def delete(client: MlflowClient) -> None:
        client.delete_registered_model(name)

    assert _status(settings, "promoter", move) == 200
    assert _status(settings, "promoter", delete) == 403
