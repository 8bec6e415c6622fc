"""Load a registered version only once it proves it is the model the promotion gate signed.

A model artifact is code: unpickling it runs whatever it holds, and even skops reads the types
to trust from the MLmodel file the artifact itself carries. So serving trusts nothing in the
artifact before checking it, in this order:

1. **The gate's digest.** When the promotion gate registers a version it records the SHA-256 of
   the version's files as the ``artifact_sha256`` tag (`record_artifact_digest`). The files
   downloaded for serving must hash to it: anything uploaded or swapped since is refused.
2. **The format.** The sklearn flavor must be saved with skops; pickle and cloudpickle are
   refused before a byte of them is read.
3. **The types.** skops loads with fraudpipe's own list of trusted types (`SKOPS_TRUSTED_TYPES`),
   never the list the artifact declares.
4. **The reference frame** (`fraudpipe.model.trust`): scored again, as recorded, not constant.

Each failure raises `ModelTrustError` naming the reason.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any, Final

import mlflow
import skops.io
from mlflow import MlflowClient
from mlflow.models import Model

from fraudpipe.adapters.mlflow.run_logging import SKOPS_TRUSTED_TYPES
from fraudpipe.config import Settings
from fraudpipe.errors import ModelTrustError
from fraudpipe.model.serving import ServingModel
from fraudpipe.model.trust import Reference, reference_problem

#: The version tag where the promotion gate records the digest of the version's files.
ARTIFACT_DIGEST_TAG: Final = "artifact_sha256"


def artifact_digest(directory: Path) -> str:
    """SHA-256 over every file under `directory`: its path relative to it, then its bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def download_version(settings: Settings, version: int, into: Path) -> Path:
    """The files of one registered version, downloaded under `into`."""
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{settings.model_name}/{version}",
        dst_path=str(into),
        tracking_uri=settings.mlflow_tracking_uri,
        registry_uri=settings.mlflow_tracking_uri,
    )
    return Path(local)


def record_artifact_digest(client: MlflowClient, settings: Settings, version: int) -> str:
    """Hash a version's files and record the digest on it (the promotion gate's signature)."""
    with tempfile.TemporaryDirectory(prefix="fraudpipe-digest-") as tmp:
        digest = artifact_digest(download_version(settings, version, Path(tmp)))
    client.set_model_version_tag(settings.model_name, str(version), ARTIFACT_DIGEST_TAG, digest)
    return digest


def load_verified(
    client: MlflowClient, settings: Settings, version: int, alias: str | None = None
) -> ServingModel:
    """Download, check and load one registered version (see the module docstring).

    Raises:
        ModelTrustError: The version fails a check; the reason says which.
    """
    name = settings.model_name

    def refuse(reason: str) -> ModelTrustError:
        return ModelTrustError(name, version, reason)

    expected = client.get_model_version(name, str(version)).tags.get(ARTIFACT_DIGEST_TAG)
    if not expected:
        raise refuse("no artifact digest was recorded for it by the promotion gate")
    with tempfile.TemporaryDirectory(prefix="fraudpipe-model-") as tmp:
        local = download_version(settings, version, Path(tmp))
        if artifact_digest(local) != expected:
            raise refuse("its files do not match the digest the promotion gate recorded")
        mlmodel = Model.load(str(local / "MLmodel"))
        pipeline = _load_pipeline(mlmodel, local, refuse)
    metadata: dict[str, Any] = mlmodel.metadata or {}
    if "threshold" not in metadata:
        raise refuse("its MLmodel carries no threshold: it was not logged by fraudpipe")
    reference = Reference.from_metadata(metadata)
    if reference is None:
        raise refuse("its MLmodel carries no reference frame to check it against")
    model = ServingModel(name, version, float(metadata["threshold"]), pipeline, alias)
    problem = reference_problem(model, reference)
    if problem is not None:
        raise refuse(problem)
    return model


def _load_pipeline(mlmodel: Model, local: Path, refuse: Any) -> Any:
    flavor = mlmodel.flavors.get("sklearn")
    if flavor is None:
        raise refuse("it is not an sklearn model")
    serialization = flavor.get("serialization_format", "pickle")
    if serialization != "skops":
        raise refuse(f"it is saved as {serialization}: pickle formats run code when loaded")
    try:
        return skops.io.load(local / flavor["pickled_model"], trusted=SKOPS_TRUSTED_TYPES)
    except Exception as exc:  # an untrusted artifact can fail in any way
        raise refuse(f"skops will not load it ({type(exc).__name__}: {exc})") from exc
