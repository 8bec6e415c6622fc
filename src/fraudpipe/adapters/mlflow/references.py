"""A registered version's reference profile (`fraudpipe.model.drift`), read from its run."""

from __future__ import annotations

import json

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from fraudpipe.adapters.mlflow.model_history import artifact_text
from fraudpipe.adapters.mlflow.principals import runs_as
from fraudpipe.adapters.mlflow.registry import require_mlflow
from fraudpipe.adapters.mlflow.run_logging import REFERENCE_ARTIFACT
from fraudpipe.config import Settings
from fraudpipe.errors import ModelRegistryError
from fraudpipe.model.drift import ReferenceProfile


@runs_as("reader")
def reference_profile(settings: Settings, version: int) -> ReferenceProfile | None:
    """The profile ``version``'s training logged; None for a version trained before profiles,
    or no such version.

    Raises:
        ServiceUnavailableError: MLflow is not reachable.
        ModelRegistryError: The profile is there but malformed.
    """
    require_mlflow(settings)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    try:
        run_id = client.get_model_version(settings.model_name, str(version)).run_id
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise ModelRegistryError(f"version {version} of {settings.model_name}: {exc}") from exc
    text = artifact_text(client, settings, run_id, REFERENCE_ARTIFACT) if run_id else None
    if text is None:
        return None
    try:
        return ReferenceProfile.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelRegistryError(
            f"version {version}'s {REFERENCE_ARTIFACT} is malformed: {exc}"
        ) from exc
