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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final
from uuid import UUID, uuid4

import structlog
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudpipe.config import Settings
from fraudpipe.errors import (
    DeliveryRefusedError,
    NoServingModelError,
    OverloadedError,
    ServiceUnavailableError,
)
from fraudpipe.serving.decide import answer
from fraudpipe.serving.keys import ApiKeys
from fraudpipe.serving.metrics import ApiMetrics
from fraudpipe.serving.runtime import Runtime, recorder_running
from fraudpipe.serving.schema import BatchDecisions, Decision, Problem, transaction_model

log = structlog.get_logger(__name__)

KEY_HEADER: Final = "X-API-Key"
#: `POST /v1/score` as the guard answers it: body and client → status, JSON, outcome.
ScoreOne = Callable[[bytes, str], Awaitable[tuple[int, bytes, str]]]
#: Bytes a request body may have: a batch of the largest size at ~2 KiB a transaction (a
#: transaction's JSON is ~900 bytes with full-precision floats).
_BYTES_PER_TRANSACTION: Final = 2048
#: Why a request may go undecided (a 503): no model serves, or Kafka did not record it.
_UNDECIDED: Final = (NoServingModelError, ServiceUnavailableError, DeliveryRefusedError)
_UNDECIDED_DETAIL: Final = "no decision could be made and recorded; retry"
_UNAVAILABLE: Final = json.dumps({"detail": _UNDECIDED_DETAIL}).encode()
_OVERLOADED_DETAIL: Final = "this worker is at its limit of transactions in flight; retry"
_OVERLOADED: Final = json.dumps({"detail": _OVERLOADED_DETAIL}).encode()
#: Sent with every 503: each says "retry", and this says when.
_RETRY_AFTER: Final = "1"
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": Problem, "description": "No valid API key."},
    413: {"model": Problem, "description": "Body over the size limit."},
    503: {
        "model": Problem,
        "description": (
            "No model can serve, Kafka did not record it, or the worker is at its limit of "
            "transactions in flight (FRAUDPIPE_API_MAX_IN_FLIGHT); Retry-After says when to "
            "try again."
        ),
    },
}


def create_app(settings: Settings | None = None) -> ASGIApp:
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
        # The API's metrics are Prometheus's (`ApiMetrics`). FastAPI's native OpenTelemetry,
        # on by default, asks the global providers (environment lookups) on every request:
        # 9% of a worker's samples under load, with no provider configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    async def score_one(body: bytes, client: str) -> tuple[int, bytes, str]:
        """`POST /v1/score`, answered by the guard itself: the body parsed and validated by
        pydantic in one step (``model_validate_json``), the answer serialised once.

        Through FastAPI's request cycle (routing, dependency solving, its exception layers,
        `json.loads` then validation) the route served 707 requests/s on one worker, closed
        loop of 16 (bench/api.py's method, the stack running); answered here, 965/s.
        """
        try:
            tx = transaction.model_validate_json(body)
        except ValidationError as exc:
            errors = [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            return 422, json.dumps({"detail": errors}).encode(), "invalid"
        try:
            record, replayed = await runtime.decide_one(tx, client)
        except OverloadedError:
            return 503, _OVERLOADED, "overloaded"
        except _UNDECIDED as exc:
            log.error("request not decided", error=str(exc))
            return 503, _UNAVAILABLE, "unavailable"
        decision = answer(record, replayed=replayed)
        return 200, decision.model_dump_json().encode(), "replayed" if replayed else "ok"

    def client_of(request: Request) -> str:
        client: str = request.scope["fraudpipe.client"]  # set by the guard, before the body
        return client

    async def decided(
        transactions: list[BaseModel], request: Request, request_id: UUID
    ) -> list[Decision]:
        retry = {"Retry-After": _RETRY_AFTER}
        try:
            made = await runtime.decide(transactions, client_of(request), request_id)
        except OverloadedError as exc:
            request.scope["fraudpipe.outcome"] = "overloaded"
            raise HTTPException(503, _OVERLOADED_DETAIL, headers=retry) from exc
        except _UNDECIDED as exc:
            log.error("request not decided", error=str(exc))
            raise HTTPException(503, _UNDECIDED_DETAIL, headers=retry) from exc
        return [answer(record, replayed=replayed) for record, replayed in made]

    # The answers go out as JSON serialised once by pydantic: returned as models, FastAPI would
    # validate them against the response model again first. The key is checked by the guard,
    # so the routes take no dependency for it; the OpenAPI document names it (`_openapi`).
    @app.post("/v1/score", response_model=Decision, responses=_ERRORS, openapi_extra=_KEYED)
    async def score(
        body: transaction,  # type: ignore[valid-type]
        request: Request,
    ) -> Response:
        """Decide on one transaction: its score, verdict, reasons and lineage."""
        # Not reached while the guard answers `POST /v1/score` itself (`score_one`): declared
        # for the OpenAPI document, its body answers through the same function.
        sent: BaseModel = body
        status, content, outcome = await score_one(
            sent.model_dump_json().encode(), client_of(request)
        )
        request.scope["fraudpipe.outcome"] = outcome
        retry = {"Retry-After": _RETRY_AFTER} if status == 503 else None
        return Response(content, status_code=status, headers=retry, media_type="application/json")

    @app.post(
        "/v1/score/batch", response_model=BatchDecisions, responses=_ERRORS, openapi_extra=_KEYED
    )
    async def score_batch(body: batch, request: Request) -> Response:
        """Decide on up to `api_max_batch` transactions at once (ids must differ)."""
        transactions: list[BaseModel] = body.transactions  # type: ignore[attr-defined]
        ids = [t.transaction_id for t in transactions]  # type: ignore[attr-defined]
        if len(set(ids)) != len(ids):
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("body", "transactions"), "msg": "ids repeat"}]
            )
        request_id = uuid4()
        decisions = await decided(transactions, request, request_id)
        answer_ = BatchDecisions(request_id=request_id, decisions=decisions)
        return Response(answer_.model_dump_json(), media_type="application/json")

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

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # The guard is the outermost layer, in front of FastAPI's: `POST /v1/score` is answered
    # without passing through them (an error `score_one` does not expect is the guard's 500).
    return _Guard(
        app,
        keys=keys,
        metrics=metrics,
        max_bytes=4096 + settings.api_max_batch * _BYTES_PER_TRANSACTION,
        score_one=score_one,
    )


#: Each scoring route's security requirement, in the OpenAPI document.
_KEYED: Final[dict[str, Any]] = {"security": [{"ApiKey": []}]}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the API-key scheme the guard enforces."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": KEY_HEADER,
                "description": "One of FRAUDPIPE_API_KEYS.",
            }
        }
        app.openapi_schema = schema
    return app.openapi_schema


class _Guard:
    """ASGI middleware for `/v1/`: the key first, then the size limit, then the route; and the
    latency and outcome of every request, whatever it came to."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeys,
        metrics: ApiMetrics,
        max_bytes: int,
        score_one: ScoreOne,
    ) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.score_one = score_one

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
        if scope["path"] == "/v1/score" and scope["method"] == "POST":
            return await self._score_one(client, receive, send)
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
        # A route names its own outcome ("replayed", "overloaded", ...), unless it ended in a 500.
        named = scope.get("fraudpipe.outcome")
        if named is not None and status != 500:
            return str(named)
        return {200: "ok", 422: "invalid", 401: "unauthorized", 503: "unavailable"}.get(
            status, "error"
        )

    async def _score_one(self, client: str, receive: Receive, send: Send) -> str:
        """`/v1/score` without FastAPI's request cycle (see `score_one`)."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return "error"
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _problem(send, 413, f"the body may have at most {self.max_bytes} bytes")
                return "too_large"
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            status, body, outcome = await self.score_one(b"".join(chunks), client)
        except Exception:  # a 500 that names nothing internal, as FastAPI's
            log.exception("request failed")
            await _problem(send, 500, "internal error")
            return "error"
        headers = [(b"content-type", b"application/json")]
        if status == 503:
            headers.append((b"retry-after", _RETRY_AFTER.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return outcome


class _BodyTooLargeError(Exception):
    pass


async def _problem(send: Send, status: int, detail: str, *, auth: bool = False) -> None:
    headers = [(b"content-type", b"application/json")]
    if auth:
        headers.append((b"www-authenticate", KEY_HEADER.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
