"""Push a measured batch's drift to the Pushgateway, where Prometheus scrapes it.

One group (job ``fraudpipe_drift``): each push replaces the previous batch's gauges, so the
alert rule always reads the latest measured batch and a drifted day stops alerting once a
later day is measured (`infra/prometheus/rules/fraudpipe.yml`).
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.exposition import basic_auth_handler

from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.model.drift import VersionDrift

DRIFT_JOB: Final = "fraudpipe_drift"


def push_drift(
    settings: Settings, batch_id: str, measured: Sequence[VersionDrift], at: datetime
) -> None:
    """Replace the Pushgateway's drift gauges with ``batch_id``'s.

    Raises:
        ServiceUnavailableError: The Pushgateway is not reachable or refuses the login.
    """
    registry = CollectorRegistry()
    by_version = ["model_version"]
    psi = Gauge(
        "fraudpipe_drift_psi",
        "PSI of a column of the latest measured batch against the scoring version's training "
        "profile",
        [*by_version, "feature"],
        registry=registry,
    )
    alert_rate = Gauge(
        "fraudpipe_batch_alert_rate",
        "Alerts per transaction in the latest measured batch",
        by_version,
        registry=registry,
    )
    expected = Gauge(
        "fraudpipe_batch_expected_alert_rate",
        "The alert rate the version's threshold was placed for (its holdout's)",
        by_version,
        registry=registry,
    )
    rows = Gauge(
        "fraudpipe_drift_batch_rows",
        "Rows of the latest measured batch each version scored",
        by_version,
        registry=registry,
    )
    for m in measured:
        version = str(m.model_version)
        for feature, value in m.psi.items():
            psi.labels(version, feature).set(value)
        alert_rate.labels(version).set(m.alert_rate)
        expected.labels(version).set(m.expected_alert_rate)
        rows.labels(version).set(m.rows)
    Gauge(
        "fraudpipe_drift_psi_threshold",
        "PSI above which a column counts as drifted (FRAUDPIPE_DRIFT_PSI_THRESHOLD)",
        registry=registry,
    ).set(settings.drift_psi_threshold)
    Gauge(
        "fraudpipe_drift_batch_info",
        "The latest measured batch (value 1)",
        ["batch"],
        registry=registry,
    ).labels(batch_id).set(1)
    Gauge(
        "fraudpipe_drift_measured_timestamp_seconds",
        "When the latest batch's drift was measured",
        registry=registry,
    ).set(at.timestamp())
    gateway = f"{settings.pushgateway_host}:{settings.pushgateway_port}"
    try:
        push_to_gateway(gateway, job=DRIFT_JOB, registry=registry, handler=_login(settings))
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceUnavailableError("Pushgateway", f"http://{gateway}") from exc


def _login(settings: Settings) -> Callable[..., Callable[[], None]]:
    user = settings.pushgateway_user
    password = settings.pushgateway_password.get_secret_value()

    def handler(
        url: str, method: str, timeout: float | None, headers: list[Any], data: bytes
    ) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, user, password)

    return handler
