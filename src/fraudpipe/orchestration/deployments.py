"""Apply `prefect.yaml`: the work pool, then every deployment in it, idempotently.

`prefect.yaml` is the one declaration of the deployments; `prefect deploy --all` is what reads
it, here run non-interactively from the checkout root with the API URL and work pool from
fraudpipe's settings (the file names the pool as `{{ $FRAUDPIPE_PREFECT_WORK_POOL }}`, the very
variable the settings read). Deploying again updates the deployments in place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from fraudpipe.config import Settings
from fraudpipe.errors import DeploymentApplyError, ServiceUnavailableError
from fraudpipe.project import project_root

#: Full names (`<flow>/<deployment>`) of fraudpipe's deployments: the DAGs launch the first
#: three; a label file is imported on demand. `prefect.yaml` must declare exactly these (a unit
#: test holds the two together).
INGEST_DEPLOYMENT = "ingest-day/fraudpipe"
PUBLISH_DEPLOYMENT = "publish-batch/fraudpipe"
RETRAIN_DEPLOYMENT = "retrain-weekly/fraudpipe"
LABELS_DEPLOYMENT = "import-labels/fraudpipe"
DEPLOYMENTS = (INGEST_DEPLOYMENT, PUBLISH_DEPLOYMENT, RETRAIN_DEPLOYMENT, LABELS_DEPLOYMENT)


@dataclass(frozen=True)
class AppliedDeployment:
    name: str
    deployment_id: str
    entrypoint: str
    work_pool: str


def prefect_file() -> Path:
    return project_root() / "prefect.yaml"


def declared_deployments(path: Path | None = None) -> list[dict[str, Any]]:
    """The `deployments:` entries of `prefect.yaml`, as written (placeholders unresolved)."""
    document = yaml.safe_load((path or prefect_file()).read_text())
    entries = document.get("deployments") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DeploymentApplyError(f"{path or prefect_file()} has no `deployments:` list")
    return [dict(entry) for entry in entries]


def ensure_work_pool(settings: Settings) -> bool:
    """Create the `process` work pool `settings.prefect_work_pool` unless it exists.

    Returns:
        True when the pool was created now.
    """
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        with SyncPrefectClient(
            settings.prefect_api_url, auth_string=settings.prefect_auth_string()
        ) as client:
            try:
                client.read_work_pool(settings.prefect_work_pool)
                return False
            except ObjectNotFound:
                pass
            try:
                client.create_work_pool(
                    WorkPoolCreate(
                        name=settings.prefect_work_pool,
                        type="process",
                        base_job_template=ProcessWorker.get_default_base_job_template(),
                        description="fraudpipe flows, one subprocess per run",
                    )
                )
            except ObjectAlreadyExists:
                return False  # created by a concurrent caller (or the worker) meanwhile
            return True
    except httpx.TransportError as exc:
        raise ServiceUnavailableError("Prefect API", settings.prefect_api_url) from exc


def apply_deployments(settings: Settings) -> list[AppliedDeployment]:
    """Create the work pool if missing, then create or update every deployment of prefect.yaml.

    Returns:
        Each deployment as the Prefect API now holds it.

    Raises:
        DeploymentApplyError: `prefect deploy` failed, or a declared deployment is missing after.
        ServiceUnavailableError: the Prefect API is not reachable.
    """
    ensure_work_pool(settings)
    root = project_root()
    env = {
        **os.environ,
        **settings.prefect_client_env(),
        "FRAUDPIPE_PREFECT_WORK_POOL": settings.prefect_work_pool,
        # `prefect deploy` imports each flow's module: it must not start talking to anything.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    prefect = Path(sys.executable).parent / "prefect"
    result = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file())],
        env=env,
        # Without pull steps in prefect.yaml, each deployment's runs start in the directory it
        # was deployed from: the checkout root, where the flows and `.env` are.
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise DeploymentApplyError(f"`prefect deploy --all` exited {result.returncode}", output)
    return read_applied(settings, output)


def read_applied(settings: Settings, deploy_output: str = "") -> list[AppliedDeployment]:
    """Read every declared deployment back from the API (proof it exists, with its id)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.exceptions import ObjectNotFound

    applied: list[AppliedDeployment] = []
    try:
        with SyncPrefectClient(
            settings.prefect_api_url, auth_string=settings.prefect_auth_string()
        ) as client:
            for name in DEPLOYMENTS:
                try:
                    deployment = client.read_deployment_by_name(name)
                except ObjectNotFound as exc:
                    raise DeploymentApplyError(
                        f"deployment {name} is missing after `prefect deploy --all`: "
                        "is it declared in prefect.yaml?",
                        deploy_output,
                    ) from exc
                applied.append(
                    AppliedDeployment(
                        name=name,
                        deployment_id=str(deployment.id),
                        entrypoint=deployment.entrypoint or "",
                        work_pool=deployment.work_pool_name or "",
                    )
                )
    except httpx.TransportError as exc:
        raise ServiceUnavailableError("Prefect API", settings.prefect_api_url) from exc
    return applied
