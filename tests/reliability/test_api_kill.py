"""SIGKILL of the scoring API under load: every decision it answered is recorded in
PostgreSQL, exactly once, and nothing it never decided is."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from api_support import ApiServer, recorded, transaction, wait_recorded

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings

pytestmark = pytest.mark.reliability


def test_sigkill_mid_load_loses_no_answered_decision(
    one_partition: Settings, tmp_path: Path
) -> None:
    server = ApiServer(one_partition, tmp_path / "serve.log", workers=2).start()
    sent: list[str] = []
    answered: list[str] = []
    stop = threading.Event()

    def load(client: int) -> None:
        rng = np.random.default_rng(client)
        with server.client() as http:
            while not stop.is_set():
                body = transaction(rng)
                sent.append(body["transaction_id"])
                try:
                    if http.post("/v1/score", json=body).status_code == 200:
                        answered.append(body["transaction_id"])
                except httpx.HTTPError:
                    pass  # the kill: no answer

    threads = [threading.Thread(target=load, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        # The whole process group: uvicorn's supervisor and both workers, none finishing.
        server.kill_group()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert len(answered) > 100
    restarted = ApiServer(one_partition, tmp_path / "restarted.log").start()
    try:
        wait_recorded(restarted, answered)
        with connect(one_partition) as conn:
            stored = {str(tx) for (tx,) in conn.execute("SELECT transaction_id FROM api_decisions")}
    finally:
        restarted.stop()
    assert set(answered) <= stored
    assert stored <= set(sent)
    assert len(recorded(one_partition, answered)) == len(answered)
