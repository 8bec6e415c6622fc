"""Who a Kafka client is: every client of the pipeline authenticates as one principal.

The broker (see `fraudpipe.stack.kafka`) accepts SASL/SCRAM-SHA-512 on its client listener and
authorizes every request against ACLs (`acls`), with nothing allowed by default:

============  ==================================================================================
principal     rights
============  ==================================================================================
admin         super user: topics, users, ACLs; connects to the broker listener with PLAIN
publisher     writes the transactions topic
scorer        reads the transactions topic in its consumer group; writes predictions, alerts
              and the DLQ
reader        reads the output topics, in groups named after ``kafka_reader_group_prefix``
============  ==================================================================================

Credentials come from the settings (`.env`), never from a command line.
"""

from __future__ import annotations

from typing import Any, Literal

from fraudpipe.config import Settings

Principal = Literal["admin", "publisher", "scorer", "reader"]


def client_config(settings: Settings, principal: Principal) -> dict[str, Any]:
    """librdkafka settings that connect and authenticate as `principal`.

    The admin speaks PLAIN on the broker's own listener, since KRaft's controller and the
    broker itself cannot use SCRAM (its users live in the metadata they would bootstrap);
    everybody else speaks SCRAM on the client listener.
    """
    user, password = settings.credentials("kafka", principal)
    admin = principal == "admin"
    config: dict[str, Any] = {
        "bootstrap.servers": (
            settings.kafka_admin_bootstrap_servers if admin else settings.kafka_bootstrap_servers
        ),
        "security.protocol": settings.kafka_security_protocol,
        "sasl.mechanism": (
            settings.kafka_admin_sasl_mechanism if admin else settings.kafka_sasl_mechanism
        ),
        "sasl.username": user,
        "sasl.password": password.get_secret_value(),
    }
    if settings.kafka_ssl_ca_location:
        config["ssl.ca.location"] = settings.kafka_ssl_ca_location
    return config
