"""MLflow adapter: log a training run, register it, gate promotion, load the serving model.

Registered model ``settings.model_name`` with aliases ``champion`` (what the scorer serves) and
``challenger`` (the loser of the latest gate: a version that did not win, or the champion a
winner displaced), which scorers run in shadow; runs go to an experiment of the same name.
Every step is safe to repeat: a version is found again by its training fingerprint, and the
``promotion_decision`` tag is written last, so a retrain interrupted half-way finishes the gate
on the next run instead of registering a duplicate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx
import mlflow
import structlog
from mlflow import MlflowClient

from fraudpipe.adapters.mlflow.principals import acting_as, basic_auth
from fraudpipe.adapters.mlflow.run_logging import log_training_run, version_tags
from fraudpipe.adapters.mlflow.verified_load import (
    ARTIFACT_DIGEST_TAG,
    load_verified,
    record_artifact_digest,
)
from fraudpipe.columns import LABEL_COLUMN
from fraudpipe.config import Settings
from fraudpipe.errors import (
    ModelRegistryError,
    ModelTrustError,
    NoServingModelError,
    ServiceUnavailableError,
)
from fraudpipe.model.card import render_model_card
from fraudpipe.model.evaluation import evaluate_scores
from fraudpipe.model.promotion import PromotionDecision, decide_promotion
from fraudpipe.model.serving import ServingModel
from fraudpipe.model.training import TrainingResult

__all__ = [
    "RegisteredVersion",
    "ServingModel",
    "VersionSummary",
    "current_serving_version",
    "find_registered",
    "list_versions",
    "load_model_version",
    "load_serving_model",
    "register_and_gate",
]

log = structlog.get_logger(__name__)

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"


@dataclass(frozen=True)
class RegisteredVersion:
    """Where a training result ended up in the registry."""

    name: str
    version: int
    run_id: str
    alias: str
    reason: str
    newly_registered: bool
    decision: PromotionDecision | None
    holdout: dict[str, float]


@dataclass(frozen=True)
class VersionSummary:
    """One registered version as ``fraudpipe models`` and the dashboard list it."""

    version: int
    created_at: datetime
    run_id: str
    aliases: tuple[str, ...]
    tags: dict[str, str]

    def metric(self, name: str) -> float | None:
        value = self.tags.get(name)
        return float(value) if value else None


def require_mlflow(settings: Settings) -> None:
    """Fail fast with a named error when the tracking server is down.

    MLflow's own client retries for minutes before giving up; a short health probe first turns
    an outage into one clear line.
    """
    url = settings.mlflow_tracking_uri
    try:
        httpx.get(f"{url}/health", timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError("MLflow", url) from exc


def _client(settings: Settings) -> MlflowClient:
    require_mlflow(settings)
    # The fluent API (start_run, log_model, register_model) reads the process-wide URI.
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


_POLL_CLIENTS: dict[int, httpx.Client] = {}


def _poll_client() -> httpx.Client:
    """This process's client for the alias polls, kept for its lifetime.

    A new client per call (``httpx.get``) builds an SSL context and loads the CA bundle, even
    for an ``http://`` URL: 43 ms of CPU holding the GIL, measured on this machine. Every poll
    then paused whatever the process was serving: the scoring API's requests, whose p99 at
    1,000 requests/s it sat in, and the scorer's micro-batches. Keyed by process id, so a
    forked child makes its own instead of sharing its parent's sockets.
    """
    pid = os.getpid()
    client = _POLL_CLIENTS.get(pid)
    if client is None:
        client = _POLL_CLIENTS[pid] = httpx.Client(timeout=5.0)
    return client


def current_serving_version(settings: Settings) -> int | None:
    """The version holding the serving alias right now, or ``None`` (cheap; for polling).

    One REST call with a short timeout, so a scorer can poll it between micro-batches.

    Raises:
        ServiceUnavailableError: MLflow is not reachable.
        ModelRegistryError: MLflow answered with an unexpected error.
    """
    api = f"{settings.mlflow_tracking_uri}/api/2.0/mlflow/registered-models"
    params = {"name": settings.model_name, "alias": settings.serving_alias}
    auth = basic_auth(settings, "reader")
    http = _poll_client()
    try:
        response = http.get(f"{api}/alias", params=params, auth=auth)
        if response.status_code == httpx.codes.FORBIDDEN:
            # MLflow's auth answers 403, not 404, for an alias of a model that does not exist.
            model = http.get(f"{api}/get", params={"name": settings.model_name}, auth=auth)
            if model.status_code == httpx.codes.NOT_FOUND:
                return None
    except httpx.TransportError as exc:
        raise ServiceUnavailableError("MLflow", settings.mlflow_tracking_uri) from exc
    if response.status_code == httpx.codes.NOT_FOUND or _no_such_alias(response):
        return None
    if response.is_error:
        raise ModelRegistryError(
            f"MLflow refused the alias lookup for {settings.model_name}@{settings.serving_alias}: "
            f"HTTP {response.status_code} {response.text[:200]}"
        )
    return int(response.json()["model_version"]["version"])


def _no_such_alias(response: httpx.Response) -> bool:
    # MLflow answers an alias no version holds (the model exists) with 400, not 404.
    if response.status_code != httpx.codes.BAD_REQUEST:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and body.get("error_code") == "INVALID_PARAMETER_VALUE"
        and "alias" in str(body.get("message", "")).lower()
        and "not found" in str(body.get("message", "")).lower()
    )


def load_model_version(settings: Settings, version: int, alias: str | None = None) -> ServingModel:
    """Download, verify and load one registered version (`verified_load.load_verified`).

    Raises:
        ModelTrustError: The version fails a check (digest, format, types, reference frame).
    """
    with acting_as(settings, "reader"):
        return load_verified(_client(settings), settings, version, alias)


def load_serving_model(settings: Settings) -> ServingModel:
    """The model behind ``models:/<model_name>@<serving_alias>``, with its threshold.

    The alias is resolved to a version number first and that version is loaded, so ``.version``
    always names the artifacts actually loaded even if the alias moves meanwhile.

    Raises:
        NoServingModelError: No version holds the serving alias yet.
    """
    version = current_serving_version(settings)
    if version is None:
        raise NoServingModelError(settings.model_name, settings.serving_alias)
    return load_model_version(settings, version, alias=settings.serving_alias)


def _find_by_fingerprint(
    client: MlflowClient, name: str, fingerprint: str
) -> tuple[int, str, dict[str, str]] | None:
    found = client.search_model_versions(
        f"name='{name}' and tags.training_fingerprint='{fingerprint}'"
    )
    if not found:
        return None
    mv = min(found, key=lambda v: int(v.version))
    return int(mv.version), str(mv.run_id), dict(mv.tags)


def _alias_version(client: MlflowClient, name: str, alias: str) -> int | None:
    model = client.get_registered_model(name)
    version = model.aliases.get(alias)
    return int(version) if version is not None else None


def _gate(
    client: MlflowClient, settings: Settings, result: TrainingResult, version: int
) -> PromotionDecision:
    """Re-score the champion on this holdout, decide, move an alias, then record the decision."""
    name = settings.model_name
    # Signed, then loaded the way serving loads it: a version that could not serve never gets
    # an alias that serves it.
    record_artifact_digest(client, settings, version)
    load_verified(client, settings, version)
    champion_version = _alias_version(client, name, CHAMPION)
    champion_metrics = None
    if champion_version is not None and champion_version != version:
        try:
            champion = load_verified(client, settings, champion_version, alias=CHAMPION)
        except ModelTrustError as exc:
            # A champion that could not serve is no bar to clear: the candidate is judged alone.
            log.warning("champion cannot be verified; judging the candidate alone", error=str(exc))
        else:
            champion_metrics = evaluate_scores(
                result.holdout[LABEL_COLUMN].to_numpy(),
                champion.score(result.holdout),
                champion.threshold,
            )
    decision = decide_promotion(
        result.holdout_metrics,
        champion_metrics,
        champion_version=champion_version,
        min_ap_gain=settings.promotion_min_ap_gain,
        guard_tolerance=settings.promotion_guard_tolerance,
    )
    if champion_version == version:
        # Resuming after a crash between the alias move and the decision tags.
        decision = PromotionDecision(
            promote=True,
            reason="already champion: an interrupted gate had moved the alias",
            candidate=result.holdout_metrics,
            champion=None,
            champion_version=version,
            min_ap_gain=settings.promotion_min_ap_gain,
            guard_tolerance=settings.promotion_guard_tolerance,
        )
    if decision.promote and champion_metrics is not None:
        # The displaced champion keeps scoring in shadow: live labels then show whether the
        # promotion held up, and a rollback is one alias move. Set before the champion moves,
        # so a gate resumed after a crash finds the old champion still to displace.
        client.set_registered_model_alias(name, CHALLENGER, str(champion_version))
    client.set_registered_model_alias(name, decision.alias, str(version))
    for key, value in decision.as_tags().items():
        if key != "promotion_decision":
            client.set_model_version_tag(name, str(version), key, value)
    # Written last: its presence means the gate finished for this version.
    client.set_model_version_tag(name, str(version), "promotion_decision", decision.alias)
    return decision


def _already_gated(client: MlflowClient, name: str, fingerprint: str) -> RegisteredVersion | None:
    existing = _find_by_fingerprint(client, name, fingerprint)
    if existing is None or "promotion_decision" not in existing[2]:
        return None
    version, run_id, tags = existing
    metrics = client.get_run(run_id).data.metrics
    return RegisteredVersion(
        name=name,
        version=version,
        run_id=run_id,
        alias=tags["promotion_decision"],
        reason=tags.get("promotion_reason", ""),
        newly_registered=False,
        decision=None,
        holdout={
            k.removeprefix("holdout_"): v for k, v in metrics.items() if k.startswith("holdout_")
        },
    )


def find_registered(settings: Settings, fingerprint: str) -> RegisteredVersion | None:
    """The version an identical earlier training (same fingerprint) registered and gated, if any.

    Lets a re-run with unchanged data and configuration skip training altogether.
    """
    with acting_as(settings, "reader"):
        return _already_gated(_client(settings), settings.model_name, fingerprint)


def register_and_gate(result: TrainingResult, settings: Settings) -> RegisteredVersion:
    """Log the run, register a version, and let the gate give it ``champion`` or ``challenger``.

    Idempotent: a result with the same training fingerprint as an existing version reuses that
    version (finishing its gate if an earlier attempt stopped half-way).

    The run and the version are made as the trainer, the gate runs as the promoter
    (`principals`): the trainer's login cannot move an alias.

    Raises:
        ServiceUnavailableError: MLflow is not reachable.
    """
    client = _client(settings)
    name = settings.model_name
    with acting_as(settings, "trainer"):
        done = _already_gated(client, name, result.fingerprint)
        if done is not None:
            return done
        existing = _find_by_fingerprint(client, name, result.fingerprint)
        if existing is not None:
            version, run_id, _ = existing
            newly = False
        else:
            run_id, model_uri = log_training_run(client, result, settings)
            registered = mlflow.register_model(model_uri, name, tags=version_tags(result))
            version, newly = int(registered.version), True
    with acting_as(settings, "promoter"):
        if newly:
            card = render_model_card(result, name)
            client.update_model_version(name, str(version), description=card)
        decision = _gate(client, settings, result, version)
        client.log_dict(run_id, {"version": version, **decision.as_tags()}, "promotion.json")
    return RegisteredVersion(
        name=name,
        version=version,
        run_id=run_id,
        alias=decision.alias,
        reason=decision.reason,
        newly_registered=newly,
        decision=decision,
        holdout=result.holdout_metrics.as_dict(),
    )


def signed_versions(settings: Settings) -> list[int]:
    """Versions the promotion gate signed (an artifact digest recorded), newest first."""
    client = _client(settings)
    name = settings.model_name
    with acting_as(settings, "reader"):
        found = client.search_model_versions(f"name='{name}'")
    return sorted(
        (int(mv.version) for mv in found if mv.tags.get(ARTIFACT_DIGEST_TAG)), reverse=True
    )


def list_versions(settings: Settings) -> list[VersionSummary]:
    """Every version of the registered model, newest first, with aliases and metric tags."""
    with acting_as(settings, "reader"):
        return _list_versions(_client(settings), settings.model_name)


def _list_versions(client: MlflowClient, name: str) -> list[VersionSummary]:
    if not client.search_registered_models(f"name='{name}'"):
        return []
    # Search results may omit aliases; the registered model always carries them.
    aliases: dict[int, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(int(version), []).append(alias)
    summaries = [
        VersionSummary(
            version=int(mv.version),
            created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
            run_id=str(mv.run_id),
            aliases=tuple(sorted(aliases.get(int(mv.version), []))),
            tags=dict(mv.tags),
        )
        for mv in client.search_model_versions(f"name='{name}'")
    ]
    return sorted(summaries, key=lambda s: s.version, reverse=True)


def delete_registered_model(settings: Settings) -> None:
    """Delete ``settings.model_name`` with every version, and its experiment; a no-op if absent.

    For throwaway models (tests and benchmarks register under names of their own); the
    experiment shares the model's name, as `register_and_gate` logs runs there. As the admin:
    only it deletes registered models (`server_auth`).
    """
    with acting_as(settings, "admin"):
        _delete_registered_model(_client(settings), settings.model_name)


def _delete_registered_model(client: MlflowClient, name: str) -> None:
    if client.search_registered_models(f"name='{name}'"):
        for mv in client.search_model_versions(f"name='{name}'"):
            client.delete_model_version(name, mv.version)
        client.delete_registered_model(name)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "active":
        client.delete_experiment(experiment.experiment_id)
