"""Read the scoring consumer's Prometheus endpoint: lag, throughput counters, latency.

The consumer serves its metrics on ``settings.metrics_port`` only while it runs, so "nothing
listens there" is an answer (the consumer is not running), not an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.scoring.metrics import PREFIX

METRICS_HOST: Final = "127.0.0.1"
"""The scorer binds its metrics server to loopback (``ScoringMetrics.serve``)."""

SCRAPE_TIMEOUT_SECONDS: Final = 1.0


@dataclass(frozen=True)
class ConsumerSnapshot:
    """One scrape of the scorer's metrics.

    Attributes:
        url: Where they were read.
        lag: Messages behind, per topic and partition (columns ``topic``, ``partition``, ``lag``).
        transactions_scored: Transactions scored since the scorer started.
        dead_letters: Messages dead-lettered since it started.
        errors: Failures it waited out or skipped since it started.
        model_version: The registered version it serves (None before it loaded one).
        end_to_end_p50_s: Median Kafka-record-to-committed-prediction time, from the histogram.
        end_to_end_p95_s: 95th percentile of the same.
    """

    url: str
    lag: pd.DataFrame
    transactions_scored: float
    dead_letters: float
    errors: float
    model_version: float | None
    end_to_end_p50_s: float | None
    end_to_end_p95_s: float | None

    @property
    def total_lag(self) -> float:
        return float(self.lag["lag"].sum()) if not self.lag.empty else 0.0


def metrics_url(settings: Settings) -> str:
    """The scorer's metrics endpoint for these settings."""
    return f"http://{METRICS_HOST}:{settings.metrics_port}/metrics"


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus-style quantile from cumulative ``(upper_bound, count)`` buckets.

    Interpolates linearly inside the bucket holding the quantile; None without observations.
    A quantile in the ``+Inf`` bucket returns the largest finite bound, as Prometheus does.
    """
    ordered = sorted(buckets)
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def parse_metrics(url: str, text: str) -> ConsumerSnapshot:
    """A snapshot from the text exposition format the scorer serves."""
    lag_rows: list[dict[str, object]] = []
    counters = {"transactions_scored": 0.0, "dead_letters": 0.0, "errors": 0.0}
    model_version: float | None = None
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        name = family.name.removeprefix(f"{PREFIX}_")
        for sample in family.samples:
            if name == "consumer_lag":
                lag_rows.append(
                    {
                        "topic": sample.labels.get("topic", ""),
                        "partition": int(sample.labels.get("partition", -1)),
                        "lag": sample.value,
                    }
                )
            elif name in counters and sample.name.endswith("_total"):
                counters[name] += sample.value
            elif name == "model_version":
                model_version = sample.value
            elif name == "end_to_end_seconds" and sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
    lag = pd.DataFrame(lag_rows, columns=["topic", "partition", "lag"])
    return ConsumerSnapshot(
        url=url,
        lag=lag.sort_values(["topic", "partition"]).reset_index(drop=True),
        transactions_scored=counters["transactions_scored"],
        dead_letters=counters["dead_letters"],
        errors=counters["errors"],
        model_version=model_version,
        end_to_end_p50_s=histogram_quantile(buckets, 0.5),
        end_to_end_p95_s=histogram_quantile(buckets, 0.95),
    )


def scrape_consumer(url: str, timeout: float = SCRAPE_TIMEOUT_SECONDS) -> ConsumerSnapshot | None:
    """Read the scorer's metrics; None when nothing listens at ``url`` (scorer not running).

    Raises:
        ServiceUnavailableError: Something answered but not with the scorer's metrics.
    """
    try:
        response = httpx.get(url, timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        return None
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(
            "scoring consumer metrics", url, f"the endpoint stopped answering ({exc})"
        ) from exc
    if response.status_code != httpx.codes.OK:
        raise ServiceUnavailableError(
            "scoring consumer metrics",
            url,
            f"HTTP {response.status_code}: another program may hold FRAUDPIPE_METRICS_PORT",
        )
    return parse_metrics(url, response.text)
