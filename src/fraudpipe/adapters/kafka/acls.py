"""The pipeline's Kafka principals and their rights, created by the admin; safe to repeat.

Each principal gets exactly what its code does (`security` lists them), on the topics and
consumer group the settings name: the broker, not fraudpipe's code, refuses anything else
(``TOPIC_AUTHORIZATION_FAILED``, ``GROUP_AUTHORIZATION_FAILED``). SCRAM users are upserted
with their passwords from the settings, so a changed password takes effect at the next
`provision_principals`; creating an ACL that exists is a no-op on the broker. Topics of one's
own (a test's, a benchmark's) get their principals' rights with `grant`, and lose them with
`revoke`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from fraudpipe.adapters.kafka.security import Principal, client_config
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError

_TIMEOUT: Final = 30.0
#: PBKDF2 rounds of the stored SCRAM credentials (Kafka's minimum is 4096).
SCRAM_ITERATIONS: Final = 8192

_READ, _WRITE, _DESCRIBE = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE
_WD = (_WRITE, _DESCRIBE)
_TOPIC, _GROUP, _TXN = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
_PREFIX = ResourcePatternType.PREFIXED


def _allow(
    settings: Settings,
    principal: Principal,
    kind: ResourceType,
    name: str,
    operation: AclOperation,
    pattern: ResourcePatternType,
) -> AclBinding:
    user, _ = settings.credentials("kafka", principal)
    return AclBinding(kind, name, pattern, f"User:{user}", "*", operation, AclPermissionType.ALLOW)


def pipeline_acls(settings: Settings) -> list[AclBinding]:
    """Every right the pipeline's principals need, on the settings' topics and group."""
    s = settings
    outputs = (s.topic_predictions, s.topic_alerts, s.topic_dlq)

    def allow(
        principal: Principal,
        kind: ResourceType,
        name: str,
        operation: AclOperation,
        pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    ) -> AclBinding:
        return _allow(s, principal, kind, name, operation, pattern)

    return [
        # An idempotent producer needs WRITE on its topic only (KIP-679); DESCRIBE lets it
        # check that the topic exists before it sends.
        allow("publisher", _TOPIC, s.topic_transactions, _WRITE),
        allow("publisher", _TOPIC, s.topic_transactions, _DESCRIBE),
        # READ: after a killed run, whether the batch's transaction was committed (log_scan).
        allow("publisher", _TOPIC, s.topic_transactions, _READ),
        # A batch is published in one transaction, under an id of its own.
        *(
            allow("publisher", _TXN, s.kafka_publish_transactional_id_prefix, op, _PREFIX)
            for op in _WD
        ),
        allow("scorer", _TOPIC, s.topic_transactions, _READ),
        allow("scorer", _TOPIC, s.topic_transactions, _DESCRIBE),
        allow("scorer", _GROUP, s.consumer_group, _READ),
        *(allow("scorer", _TOPIC, t, op) for t in outputs for op in _WD),
        # Transactional outputs: ids under the scorer's prefix, offsets sent to its group.
        *(allow("scorer", _TXN, s.kafka_transactional_id_prefix, op, _PREFIX) for op in _WD),
        # The scoring API (the scorer's principal): each decision goes to its topic, and its
        # recorder reads them back into PostgreSQL in a group of its own.
        *(allow("scorer", _TOPIC, s.topic_decisions, op) for op in (_READ, *_WD)),
        allow("scorer", _GROUP, s.api_recorder_group, _READ),
        *(
            allow("reader", _TOPIC, t, op)
            for t in (*outputs, s.topic_decisions)
            for op in (_READ, _DESCRIBE)
        ),
        allow("reader", _GROUP, s.kafka_reader_group_prefix, _READ, _PREFIX),
    ]


def prefix_rights(settings: Settings, topic_prefix: str, group_prefix: str) -> list[AclBinding]:
    """The publisher's and scorer's rights on every topic and group under two prefixes.

    For a benchmark that makes topics and groups as it goes; the pipeline itself gets
    `pipeline_acls`, on literal names.
    """
    rights: list[tuple[Principal, ResourceType, str, AclOperation]] = [
        ("publisher", _TOPIC, topic_prefix, _WRITE),
        ("publisher", _TOPIC, topic_prefix, _DESCRIBE),
        ("publisher", _TOPIC, topic_prefix, _READ),
        ("scorer", _TOPIC, topic_prefix, _READ),
        ("scorer", _TOPIC, topic_prefix, _WRITE),
        ("scorer", _TOPIC, topic_prefix, _DESCRIBE),
        ("scorer", _GROUP, group_prefix, _READ),
    ]
    return [_allow(settings, p, kind, name, op, _PREFIX) for p, kind, name, op in rights]


def provision_principals(settings: Settings) -> None:
    """Upsert the SCRAM users of the publisher, scorer and reader, and grant `pipeline_acls`.

    Raises:
        ServiceUnavailableError: The broker cannot be reached as the admin.
        KafkaException: The broker refused (e.g. the admin is not a super user).
    """
    admin = AdminClient(client_config(settings, "admin"))
    mechanism = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    users = [settings.credentials("kafka", p) for p in ("publisher", "scorer", "reader")]
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(user, mechanism, password.get_secret_value().encode())
        for user, password in users
    ]
    try:
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result(timeout=_TIMEOUT)
        grant(settings, pipeline_acls(settings))
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is not None and error.code() == KafkaError._TRANSPORT:
            raise ServiceUnavailableError("Kafka", settings.kafka_admin_bootstrap_servers) from exc
        raise


def grant(settings: Settings, bindings: Iterable[AclBinding]) -> None:
    """Create ACLs as the admin (an ACL that exists already is left as it is)."""
    admin = AdminClient(client_config(settings, "admin"))
    for future in admin.create_acls(list(bindings), request_timeout=_TIMEOUT).values():
        future.result(timeout=_TIMEOUT)


def revoke(settings: Settings, bindings: Iterable[AclBinding]) -> None:
    """Delete exactly these ACLs as the admin (e.g. a throwaway topic's, after a test)."""
    admin = AdminClient(client_config(settings, "admin"))
    filters = [
        AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
            b.permission_type,
        )
        for b in bindings
    ]  # fmt: skip
    if not filters:
        return
    for future in admin.delete_acls(filters, request_timeout=_TIMEOUT).values():
        future.result(timeout=_TIMEOUT)


@contextmanager
def scoped_rights(
    settings: Settings, base: Settings, *, groups_named_after: bool = False
) -> Iterator[list[AclBinding]]:
    """The principals' rights on the topics and group `settings` names and `base` does not.

    For topics of one's own (a test's, a benchmark's): granted on entry, revoked on exit,
    so the shared prefixes' rights, which both name, are never touched.

    Args:
        settings: Names the topics and the scorer's group.
        base: Names the shared ones.
        groups_named_after: The scorer may also use every group whose name starts with its
            group's (a test that reads a topic again in a second group).
    """
    own = set(pipeline_acls(settings)) - set(pipeline_acls(base))
    if groups_named_after:
        own.add(_allow(settings, "scorer", _GROUP, settings.consumer_group, _READ, _PREFIX))
    rights = sorted(own, key=str)
    grant(settings, rights)
    try:
        yield rights
    finally:
        revoke(settings, rights)
