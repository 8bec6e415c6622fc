"""The scoring API as a FastAPI app: routes, authentication, size limits, errors, metrics.

FastAPI (on uvicorn) rather than bare Starlette: the request and answer models
(`schema`) give the OpenAPI document and `/docs`, and pydantic's validation gives a 422 naming
every bad field, both of which the issue asks for and Starlette would leave to hand-written
code. The cost per request was measured against bare endpoints of the same server
(`bench/api.py`: the floor is `/healthz`).

Every `/v1/` request is authenticated before its body is read (`guard`): without a valid
``X-API-Key`` it gets a 401, whatever it sends, and a body over the size limit a 413. What a
body contains cannot make the server fail: the models are strict and closed, JSON nested too
deeply is a 422, and any error past validation is a 500 that names nothing internal.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time,
# and the transaction model is built from the settings' bounds inside `create_app`.

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final

import structlog
from fastapi import FastAPI, HTTPException, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudpipe.config import Settings
from fraudpipe.errors import DeliveryRefusedError, NoServingModelError, ServiceUnavailableError
from fraudpipe.serving.decide import answer
from fraudpipe.serving.keys import ApiKeys
from fraudpipe.serving.metrics import ApiMetrics
from fraudpipe.serving.runtime import Runtime, recorder_running
from fraudpipe.serving.schema import BatchDecisions, Decision, Problem, transaction_model

log = structlog.get_logger(__name__)

KEY_HEADER: Final = "X-API-Key"
#: Bytes a request body may have: a batch of the largest size at ~2 KiB a transaction (a
#: transaction's JSON is ~900 bytes with full-precision floats).
_BYTES_PER_TRANSACTION: Final = 2048
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": Problem, "description": "No valid API key."},
    413: {"model": Problem, "description": "Body over the size limit."},
    503: {"model": Problem, "description": "No model can serve, or Kafka did not record it."},
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The scoring API, for uvicorn (``factory=True``).

    Raises:
        ConfigurationError: No valid API keys are configured.
    """
    settings = settings or Settings()
    keys = ApiKeys.parse(settings.api_keys)
    metrics = ApiMetrics.create()
    transaction = transaction_model(settings.bounds_margin)
    batch = create_model(
        "BatchRequest",
        __config__=ConfigDict(extra="forbid"),
        transactions=(
            list[transaction],  # type: ignore[valid-type]
            Field(min_length=1, max_length=settings.api_max_batch),
        ),
    )
    runtime = Runtime(settings, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        log.info("scoring API ready", model_version=runtime.serving_version())
        yield
        await runtime.stop()

    app = FastAPI(
        title="fraudpipe scoring API",
        summary="Score one card transaction, or a batch, with the verified champion.",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(
        _Guard,
        keys=keys,
        metrics=metrics,
        max_bytes=4096 + settings.api_max_batch * _BYTES_PER_TRANSACTION,
    )
    key_header = APIKeyHeader(name=KEY_HEADER, description="One of FRAUDPIPE_API_KEYS.")

    # Async: a plain function would run in a thread pool, a thread hop per request.
    async def client_of(request: Request, _: Annotated[str, Security(key_header)]) -> str:
        client: str = request.scope["fraudpipe.client"]  # set by the guard
        return client

    async def decided(transactions: list[BaseModel], client: str) -> list[Decision]:
        try:
            made = await runtime.decide(transactions, client)
        except (NoServingModelError, ServiceUnavailableError, DeliveryRefusedError) as exc:
            log.error("request not decided", error=str(exc))
            raise HTTPException(503, "no decision could be made and recorded; retry") from exc
        return [answer(record, replayed=replayed) for record, replayed in made]

    @app.post("/v1/score", responses=_ERRORS)
    async def score(
        body: transaction,  # type: ignore[valid-type]
        client: Annotated[str, Security(client_of)],
        request: Request,
    ) -> Decision:
        """Decide on one transaction: its score, verdict, reasons and lineage."""
        [decision] = await decided([body], client)
        request.scope["fraudpipe.outcome"] = "replayed" if decision.replayed else "ok"
        return decision

    @app.post("/v1/score/batch", responses=_ERRORS)
    async def score_batch(
        body: batch,
        client: Annotated[str, Security(client_of)],
    ) -> BatchDecisions:
        """Decide on up to `api_max_batch` transactions at once (ids must differ)."""
        transactions: list[BaseModel] = body.transactions  # type: ignore[attr-defined]
        ids = [t.transaction_id for t in transactions]  # type: ignore[attr-defined]
        if len(set(ids)) != len(ids):
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("body", "transactions"), "msg": "ids repeat"}]
            )
        decisions = await decided(transactions, client)
        return BatchDecisions(request_id=decisions[0].request_id, decisions=decisions)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the event loop answers."""
        return {"status": "alive"}

    @app.get("/readyz", responses={503: {"description": "Not ready; the checks say why."}})
    async def readyz() -> JSONResponse:
        """Ready: a verified model serves, Kafka is reachable, the recorder runs."""
        checks = {
            "model": runtime.model_ready,
            "kafka": runtime.kafka_reachable(),
            "recorder": recorder_running(),
        }
        body = {
            "ready": all(checks.values()),
            "checks": checks,
            "model_version": runtime.serving_version(),
            "postgres_lookups": runtime.lookup.connected,
        }
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        runtime.serving_version()
        text, content_type = metrics.exposition()
        return Response(text, media_type=content_type)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        request.scope["fraudpipe.outcome"] = "invalid"
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    return app


class _Guard:
    """ASGI middleware for `/v1/`: the key first, then the size limit, then the route; and the
    latency and outcome of every request, whatever it came to."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, metrics: ApiMetrics, max_bytes: int) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        endpoint = scope["path"] if scope["path"] in ("/v1/score", "/v1/score/batch") else "other"
        outcome = await self._handle(scope, receive, send)
        self.metrics.requests.labels(endpoint, outcome).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> str:
        headers = dict(scope["headers"])
        client = self.keys.who(headers.get(KEY_HEADER.lower().encode(), b"").decode("latin-1"))
        if client is None:
            await _problem(send, 401, "a valid X-API-Key header is required", auth=True)
            return "unauthorized"
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _problem(send, 413, f"the body may have at most {self.max_bytes} bytes")
            return "too_large"
        scope["fraudpipe.client"] = client
        status = 500
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _BodyTooLargeError
            return message

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, limited, watch)
        except _BodyTooLargeError:
            await _problem(send, 413, f"the body may have at most {self.max_bytes} bytes")
            return "too_large"
        except RecursionError:
            await _problem(send, 422, "the body is nested too deeply to be a transaction")
            return "invalid"
        if status == 200:
            return str(scope.get("fraudpipe.outcome", "ok"))
        return {422: "invalid", 401: "unauthorized", 503: "unavailable"}.get(status, "error")


class _BodyTooLargeError(Exception):
    pass


async def _problem(send: Send, status: int, detail: str, *, auth: bool = False) -> None:
    headers = [(b"content-type", b"application/json")]
    if auth:
        headers.append((b"www-authenticate", KEY_HEADER.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
