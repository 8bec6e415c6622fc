"""The serving model, reloaded when the champion alias moves, without restarting the scorer, and
never replaced by a version that fails verification (`verified_load`).

`poll()` runs beside the consume loop (see `scoring.periodic`): it asks MLflow which version
holds the alias (one cheap REST call) and, when it moved, loads and verifies that version
there, off the loop. The loop's `model()` then swaps it in between two micro-batches, so a
micro-batch is always scored by one version. If MLflow is away at poll time the current model
keeps serving (a logged warning) and the next poll tries again.

A version that fails verification is refused: the current one keeps serving, the refusal is
reported once per version through `on_refusal` (the scorer logs it, counts it and records it
for the dashboard), and it is not downloaded again until the alias moves elsewhere. At start-up,
when the alias points at a version that fails, the newest version the gate signed that passes
serves instead, and that is reported too. A model that raises while scoring a micro-batch is
refused the same way (`refuse`), and the last good one takes over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from mlflow.exceptions import MlflowException

from fraudpipe.adapters.mlflow.registry import (
    current_serving_version,
    load_model_version,
    signed_versions,
)
from fraudpipe.config import Settings
from fraudpipe.errors import (
    ModelRegistryError,
    ModelTrustError,
    NoServingModelError,
    ServiceUnavailableError,
)
from fraudpipe.model.serving import ServingModel

log = structlog.get_logger(__name__)

#: Told of each refused version once: (version, reason).
RefusalHandler = Callable[[int, str], None]

_UNREACHABLE = (ServiceUnavailableError, ModelRegistryError, MlflowException)


class ServingModelWatcher:
    """Holds the model behind ``<model_name>@<serving_alias>`` and follows the alias."""

    def __init__(self, settings: Settings, on_refusal: RefusalHandler | None = None) -> None:
        """Prepare the watcher; nothing is loaded until `model()` is first called."""
        self._settings = settings
        self._on_refusal = on_refusal
        self._model: ServingModel | None = None
        self._previous: ServingModel | None = None
        self._staged: ServingModel | None = None
        self._refused: dict[int, str] = {}
        self._lock = threading.Lock()

    @property
    def refused(self) -> dict[int, str]:
        """The versions refused so far, with why."""
        with self._lock:
            return dict(self._refused)

    @property
    def next_version(self) -> int | None:
        """The version the next micro-batch will be scored with (None before the first load)."""
        with self._lock:
            model = self._staged or self._model
        return None if model is None else model.version

    def model(self) -> ServingModel:
        """The model to score the next micro-batch with (a version `poll()` staged, if any).

        Raises:
            NoServingModelError: No version may serve (only before the first load).
            ServiceUnavailableError: MLflow is unreachable and no model is loaded yet.
        """
        with self._lock:
            staged, self._staged = self._staged, None
        if staged is not None:
            previous = self._model
            self._previous, self._model = previous, staged
            log.info(
                "serving alias moved; new version in service",
                model=staged.name,
                previous_version=previous.version if previous is not None else None,
                version=staged.version,
            )
        if self._model is None:
            self._model = self._first_model()
            log.info("serving model loaded", model=self._model.name, version=self._model.version)
        return self._model

    def refuse(self, model: ServingModel, reason: str) -> ServingModel:
        """Take a serving model out of service (it failed at scoring); the last good one serves.

        Raises:
            NoServingModelError: There is no earlier good model to go back to.
        """
        self._report(model.version, reason)
        fallback = self._previous
        if fallback is None or fallback.version == model.version:
            raise NoServingModelError(self._settings.model_name, self._settings.serving_alias)
        self._model, self._previous = fallback, None
        log.error("serving the last good version again", version=fallback.version)
        return fallback

    def poll(self) -> None:
        """Check the alias; load, verify and stage a new version when it moved (off the loop)."""
        current = self._model
        if current is None:
            return
        with self._lock:
            staged_version = self._staged.version if self._staged is not None else None
            refused = set(self._refused)
        try:
            version = current_serving_version(self._settings)
            if version is None or version in (current.version, staged_version, *refused):
                return
            loaded = load_model_version(self._settings, version, alias=self._settings.serving_alias)
        except ModelTrustError as exc:
            self._report(exc.version, exc.reason)
            return
        except (*_UNREACHABLE, NoServingModelError) as exc:
            log.warning(
                "cannot check the serving alias; keeping the current model",
                version=current.version,
                error=str(exc),
            )
            return
        with self._lock:
            self._staged = loaded

    def _first_model(self) -> ServingModel:
        """The alias's version if it passes; else the newest signed version that does."""
        s = self._settings
        version = current_serving_version(s)
        if version is None:
            raise NoServingModelError(s.model_name, s.serving_alias)
        try:
            return load_model_version(s, version, alias=s.serving_alias)
        except ModelTrustError as exc:
            self._report(exc.version, exc.reason)
        for candidate in signed_versions(s):
            if candidate == version:
                continue
            try:
                model = load_model_version(s, candidate)
            except ModelTrustError as exc:
                self._report(exc.version, exc.reason)
                continue
            log.error(
                "serving alias points at a refused version; serving the newest that passed",
                alias_version=version,
                version=candidate,
            )
            return model
        raise NoServingModelError(s.model_name, s.serving_alias)

    def _report(self, version: int, reason: str) -> None:
        with self._lock:
            if version in self._refused:
                return
            self._refused[version] = reason
        log.error("model version refused", version=version, reason=reason)
        if self._on_refusal is not None:
            self._on_refusal(version, reason)


class ShadowModelWatcher:
    """Holds the model behind ``<model_name>@<shadow_alias>`` (the challenger), if any.

    A shadow only scores: it never serves, so nothing falls back for it. A version that fails
    verification is refused (reported once, never loaded again) and the micro-batches go
    unshadowed; when the alias is removed, shadow scoring stops at the next poll.
    """

    def __init__(self, settings: Settings, on_refusal: RefusalHandler | None = None) -> None:
        """Prepare the watcher; `poll()` loads the shadow (call it once before consuming)."""
        self._settings = settings.model_copy(update={"serving_alias": settings.shadow_alias})
        self._on_refusal = on_refusal
        self._model: ServingModel | None = None
        self._refused: set[int] = set()
        self._lock = threading.Lock()

    def model(self) -> ServingModel | None:
        """The shadow to score the next micro-batch with, or None."""
        with self._lock:
            return self._model

    def poll(self) -> None:
        """Follow the shadow alias: load and verify a version it moved to, drop it if cleared."""
        s = self._settings
        try:
            version = current_serving_version(s)
        except _UNREACHABLE as exc:
            log.warning("cannot check the shadow alias; keeping the shadow", error=str(exc))
            return
        with self._lock:
            current = self._model
        if version is None or version in self._refused:
            if current is not None:
                log.info("shadow alias cleared; shadow scoring stops", version=current.version)
                with self._lock:
                    self._model = None
            return
        if current is not None and current.version == version:
            return
        try:
            loaded = load_model_version(s, version, alias=s.serving_alias)
        except ModelTrustError as exc:
            self._refused.add(exc.version)
            log.error("shadow version refused", version=exc.version, reason=exc.reason)
            if self._on_refusal is not None:
                self._on_refusal(exc.version, exc.reason)
            return
        except (*_UNREACHABLE, NoServingModelError) as exc:
            log.warning("cannot load the shadow version", version=version, error=str(exc))
            return
        log.info("shadow version in service", model=loaded.name, version=loaded.version)
        with self._lock:
            self._model = loaded
