"""The serving model, reloaded when the champion alias moves, without restarting the scorer.

`poll()` runs beside the consume loop (see `periodic`): it asks MLflow which version holds the
alias (one cheap REST call) and, when it moved, loads the new version there, off the loop. The
loop's `model()` then swaps it in between two micro-batches, so a micro-batch is always scored
by one version. If MLflow is away at poll time the current model keeps serving (a logged
warning) and the next poll tries again.
"""

from __future__ import annotations

import threading

import structlog
from mlflow.exceptions import MlflowException

from fraudpipe.adapters.mlflow.registry import current_serving_version, load_serving_model
from fraudpipe.config import Settings
from fraudpipe.errors import ModelRegistryError, NoServingModelError, ServiceUnavailableError
from fraudpipe.model.serving import ServingModel

log = structlog.get_logger(__name__)


class ServingModelWatcher:
    """Holds the model behind ``<model_name>@<serving_alias>`` and follows the alias."""

    def __init__(self, settings: Settings) -> None:
        """Prepare the watcher; nothing is loaded until `model()` is first called."""
        self._settings = settings
        self._model: ServingModel | None = None
        self._staged: ServingModel | None = None
        self._lock = threading.Lock()

    def model(self) -> ServingModel:
        """The model to score the next micro-batch with (a version `poll()` staged, if any).

        Raises:
            NoServingModelError: No version holds the alias yet (only before the first load).
            ServiceUnavailableError: MLflow is unreachable and no model is loaded yet.
        """
        with self._lock:
            staged, self._staged = self._staged, None
        if staged is not None:
            previous = self._model.version if self._model is not None else None
            self._model = staged
            log.info(
                "serving alias moved; new version in service",
                model=staged.name,
                previous_version=previous,
                version=staged.version,
            )
        if self._model is None:
            self._model = load_serving_model(self._settings)
            log.info("serving model loaded", model=self._model.name, version=self._model.version)
        return self._model

    def poll(self) -> None:
        """Check the alias; load and stage a new version when it moved (call off the loop)."""
        current = self._model
        if current is None:
            return
        with self._lock:
            staged_version = self._staged.version if self._staged is not None else None
        try:
            version = current_serving_version(self._settings)
            if version is None or version in (current.version, staged_version):
                return
            loaded = load_serving_model(self._settings)
        except (
            ServiceUnavailableError,
            ModelRegistryError,
            NoServingModelError,
            MlflowException,
        ) as exc:
            log.warning(
                "cannot check the serving alias; keeping the current model",
                version=current.version,
                error=str(exc),
            )
            return
        with self._lock:
            self._staged = loaded
