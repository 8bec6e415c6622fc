"""The synchronous scoring API over real HTTP, against the real stack: a `fraudpipe serve`
process with its own topics, model, database and recorder group."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import numpy as np
import pytest
from api_support import ApiServer, recorded, transaction, wait_recorded
from hypothesis import strategies as st
from scoring_support import (
    champion_model,
    own_settings,
    register_tiny_model,
    scoring_topics,
    set_champion,
)
from scratch_db import scratch_database

from fraudpipe.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_settings(stack: Settings) -> Iterator[Settings]:
    with scratch_database(stack, prefix="fraudpipe_test") as db:
        settings = own_settings(db, uuid.uuid4().hex[:10], partitions=2)
        with scoring_topics(settings), champion_model(settings, seed=5):
            yield settings


@pytest.fixture(scope="module")
def server(api_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    log = tmp_path_factory.mktemp("api") / "serve.log"
    api = ApiServer(api_settings, log).start()
    try:
        yield api
    finally:
        api.stop()


def test_a_decision_has_score_verdict_reasons_and_lineage(server: ApiServer) -> None:
    rng = np.random.default_rng(1)
    with server.client() as http:
        plain = http.post("/v1/score", json=transaction(rng))
        risky = http.post("/v1/score", json=transaction(rng, fraud_like=True))
    assert plain.status_code == 200, plain.text
    assert risky.status_code == 200, risky.text
    for answer in (plain.json(), risky.json()):
        assert 0.0 <= answer["score"] <= 1.0
        assert answer["is_fraud"] == (answer["score"] >= answer["threshold"])
        assert answer["model_name"] == server.settings.model_name
        assert answer["model_version"] == 1
        assert answer["replayed"] is False
        uuid.UUID(answer["request_id"])
        flagged = answer["is_fraud"]
        assert answer["reasons_method"] == ("linear" if flagged else "")
        assert bool(answer["reasons"]) == flagged, "a flagged one names its reasons, as alerts do"
        contributions = [r["contribution"] for r in answer["reasons"]]
        assert contributions == sorted(contributions, reverse=True)
    assert risky.json()["is_fraud"] and not plain.json()["is_fraud"]
    assert {r["feature"] for r in risky.json()["reasons"]} & {"v14", "v17"}


def test_a_repeated_id_gets_the_first_answer_in_this_worker_and_after_a_restart(
    api_settings: Settings, tmp_path: Path
) -> None:
    body = transaction(np.random.default_rng(2))
    first = ApiServer(api_settings, tmp_path / "first.log").start()
    try:
        with first.client() as http:
            answers = [http.post("/v1/score", json=body).json() for _ in range(3)]
        wait_recorded(first, [body["transaction_id"]])
    finally:
        first.stop()
    second = ApiServer(api_settings, tmp_path / "second.log").start()
    try:
        with second.client(second.key) as http:
            again = http.post("/v1/score", json=body).json()
    finally:
        second.stop()
    assert [a["replayed"] for a in answers] == [False, True, True]
    assert again["replayed"] is True

    def same(answer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in answer.items() if k != "replayed"}

    for answer in [*answers, again]:
        assert same(answer) == same(answers[0])


def test_a_batch_is_decided_in_order_and_each_decision_recorded_once(server: ApiServer) -> None:
    rng = np.random.default_rng(3)
    bodies = [transaction(rng, fraud_like=i % 10 == 0) for i in range(200)]
    with server.client() as http:
        response = http.post("/v1/score/batch", json={"transactions": bodies})
        repeat = http.post("/v1/score/batch", json={"transactions": bodies[:50]})
    assert response.status_code == 200, response.text
    decisions = response.json()["decisions"]
    ids = [b["transaction_id"] for b in bodies]
    assert [d["transaction_id"] for d in decisions] == ids
    first = response.json()["request_id"]
    assert {d["request_id"] for d in decisions} == {first}
    assert all(d["replayed"] for d in repeat.json()["decisions"])
    # The repeat is a request of its own; each decision in it keeps the request that made it.
    assert repeat.json()["request_id"] != first
    assert {d["request_id"] for d in repeat.json()["decisions"]} == {first}
    wait_recorded(server, ids)
    stored = recorded(server.settings, ids)
    assert len(stored) == len(ids)
    for d in decisions:
        assert stored[d["transaction_id"]] == (d["model_version"], d["score"], d["is_fraud"])


def test_a_worker_at_its_limit_refuses_a_request_whole_and_at_once(
    api_settings: Settings, tmp_path: Path
) -> None:
    """Past FRAUDPIPE_API_MAX_IN_FLIGHT a request (a batch, or a single one among many sent at
    once) gets a 503 with Retry-After, and none of its transactions is decided: sent again
    within the limit, each is decided once, and recorded."""
    rng = np.random.default_rng(11)
    bodies = [transaction(rng) for _ in range(4)]
    ids = [b["transaction_id"] for b in bodies]
    limited = ApiServer(
        api_settings, tmp_path / "serve.log", extra_env={"FRAUDPIPE_API_MAX_IN_FLIGHT": "3"}
    ).start()
    singles = [transaction(rng) for _ in range(64)]
    try:
        with limited.client() as http:
            refused = http.post("/v1/score/batch", json={"transactions": bodies})
            taken = http.post("/v1/score/batch", json={"transactions": bodies[:3]})
            one = http.post("/v1/score", json=bodies[3])
        # 64 at once: more than 3 are undecided together, so some are refused.
        at_once = asyncio.run(_post_at_once(limited, singles))
        with limited.client() as http:
            metrics = http.get("/metrics").text
        decided = [
            b["transaction_id"] for b, r in zip(singles, at_once, strict=True) if r[0] == 200
        ]
        wait_recorded(limited, ids + decided)
    finally:
        limited.stop()
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    assert "limit of transactions in flight" in refused.json()["detail"]
    assert taken.status_code == 200, taken.text
    assert one.status_code == 200, one.text
    assert [d["replayed"] for d in taken.json()["decisions"]] == [False] * 3
    assert one.json()["replayed"] is False
    assert len(recorded(api_settings, ids)) == 4
    assert 'endpoint="/v1/score/batch",outcome="overloaded"' in metrics
    statuses = [status for status, _ in at_once]
    assert set(statuses) == {200, 503}, statuses
    assert {retry for status, retry in at_once if status == 503} == {"1"}
    assert 'endpoint="/v1/score",outcome="overloaded"' in metrics
    # What was refused was not decided: only the answered transactions are recorded.
    sent = [b["transaction_id"] for b in singles]
    assert sorted(recorded(api_settings, sent)) == sorted(decided)


async def _post_at_once(server: ApiServer, bodies: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """POST each body to /v1/score concurrently: each answer's status and Retry-After."""
    headers = {"X-API-Key": server.key}
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, limits=limits, timeout=10.0
    ) as http:
        answers = await asyncio.gather(*(http.post("/v1/score", json=b) for b in bodies))
    return [(a.status_code, a.headers.get("retry-after", "")) for a in answers]


def test_no_key_or_a_wrong_key_is_401_before_the_body_is_read(server: ApiServer) -> None:
    body = transaction(np.random.default_rng(4))
    for key in ("", "not-a-key-at-all-0000000000"):
        with server.client(key) as http:
            response = http.post("/v1/score", json=body)
            garbage = http.post("/v1/score", content=b"{not json")
        assert response.status_code == 401
        assert garbage.status_code == 401
        assert response.headers["www-authenticate"] == "X-API-Key"
    assert recorded(server.settings, [body["transaction_id"]]) == {}


def test_a_bad_request_is_a_422_naming_each_bad_field(server: ApiServer) -> None:
    body: dict[str, Any] = transaction(np.random.default_rng(5))
    body.update(amount=-1.0, v1=1e308, v2="1.5", surplus=1)
    del body["v3"]
    with server.client() as http:
        response = http.post("/v1/score", json=body)
        too_many = http.post(
            "/v1/score/batch",
            json={"transactions": [transaction(np.random.default_rng(i)) for i in range(1001)]},
        )
        twice = http.post("/v1/score/batch", json={"transactions": [body, body]})
        huge = http.post("/v1/score", content=b"[" * 3_000_000)
        naive = http.post(
            "/v1/score",
            json={**transaction(np.random.default_rng(6)), "event_time": "2026-12-05T10:00:00"},
        )
    assert response.status_code == 422
    fields = {tuple(e["loc"])[-1] for e in response.json()["detail"]}
    assert fields == {"amount", "v1", "v2", "v3", "surplus"}
    assert too_many.status_code in (413, 422)
    assert twice.status_code == 422
    assert huge.status_code == 413
    assert naive.status_code == 422


def test_health_readiness_metrics_and_openapi(server: ApiServer) -> None:
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "alive"}
        ready = http.get("/readyz").json()
        assert ready["ready"] and ready["model_version"] == 1
        schema = http.get("/openapi.json").json()
        metrics = http.get("/metrics").text
    assert {"/v1/score", "/v1/score/batch"} <= set(schema["paths"])
    transaction_schema = schema["components"]["schemas"]["Transaction"]
    assert transaction_schema["properties"]["amount"]["minimum"] == 0.0
    assert "fraudpipe_api_request_seconds_bucket" in metrics
    assert 'fraudpipe_api_requests_total{endpoint="/v1/score",outcome="ok"}' in metrics
    assert "fraudpipe_api_model_version 1.0" in metrics


def test_the_champion_moves_under_load_and_no_request_fails(
    api_settings: Settings, tmp_path: Path
) -> None:
    server = ApiServer(api_settings, tmp_path / "serve.log").start()
    answers: dict[int, list[tuple[int, int]]] = {0: [], 1: [], 2: []}  # (status, version)
    stop = threading.Event()

    def load(client: int) -> None:
        rng = np.random.default_rng(client)
        with server.client() as http:
            while not stop.is_set():
                try:
                    r = http.post("/v1/score", json=transaction(rng))
                    answers[client].append((r.status_code, r.json().get("model_version", 0)))
                except httpx.HTTPError:
                    answers[client].append((0, 0))

    def moved(version: int) -> bool:
        return all(a and a[-1][1] == version for a in answers.values())

    threads = [threading.Thread(target=load, args=(c,)) for c in answers]
    try:
        for t in threads:
            t.start()
        time.sleep(2)
        version = register_tiny_model(api_settings, seed=11)
        set_champion(api_settings, version)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not moved(version):
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        set_champion(api_settings, 1)
        server.stop()
    everything = [a for client in answers.values() for a in client]
    failed = [a for a in everything if a[0] != 200]
    assert not failed, f"{len(failed)} of {len(everything)} requests failed: {failed[:5]}"
    for client in answers.values():
        versions = [v for _, v in client]
        switch = versions.index(version)  # each client sees the move once, for good
        assert switch > 0
        assert set(versions[:switch]) == {1}
        assert set(versions[switch:]) == {version}


_json_value = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_FIELDS = list(transaction(np.random.default_rng(0)))
_JSON = {"content-type": "application/json"}


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(
    changes=st.dictionaries(st.sampled_from([*_FIELDS, "extra"]), _json_value, max_size=4),
    dropped=st.sets(st.sampled_from(_FIELDS), max_size=2),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_request_body_makes_the_server_fail(
    server: ApiServer, changes: dict[str, Any], dropped: set[str], seed: int
) -> None:
    body = {**transaction(np.random.default_rng(seed)), **changes}
    for name in dropped:
        body.pop(name, None)
    with server.client() as http:
        # NaN and Infinity as JavaScript writes them: not JSON, yet parsers take them.
        content = json.dumps(body).encode()
        response = http.post("/v1/score", content=content, headers=_JSON)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        bad = {e["loc"][-1] for e in response.json()["detail"]}
        assert bad <= {*changes, *dropped}, (bad, changes, dropped)
    else:
        assert 0.0 <= response.json()["score"] <= 1.0
