"""A topic's configs as the broker serves them, for tests that change them."""

from __future__ import annotations

from collections.abc import Callable

# The documented import path, though the package does not mark these as re-exported.
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]
from waiting import wait_for

_TIMEOUT = 30.0


def served_configs(admin: AdminClient, topic: str) -> dict[str, str | None]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    described = admin.describe_configs([resource])[resource].result(timeout=_TIMEOUT)
    return {name: entry.value for name, entry in described.items()}


def wait_until_served(
    admin: AdminClient, topic: str, key: str, wanted: Callable[[str | None], bool]
) -> None:
    """Wait until the broker serves a value of `key` that is `wanted`.

    A config change is acknowledged before the broker serves it: KRaft applies it through the
    metadata log. Read at once, the old value came back in one CI run of many.
    """
    wait_for(
        f"{topic}: {key} as wanted",
        lambda: wanted(served_configs(admin, topic)[key]),
        _TIMEOUT,
        lambda: f"served: {served_configs(admin, topic)[key]}",
        poll_s=0.1,
    )
