"""Put the local contracts into the Schema Registry, and check local changes against it.

`register_contracts` is what `fraudpipe contracts register` runs (idempotent: an unchanged
schema registers nothing); `check_contracts` is the read-only gate of `fraudpipe contracts
check` (CI, before a merge): it asks the registry whether each local `.avsc` could be registered
and, when not, explains why field by field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from fraudpipe.adapters.avro.compatibility import LEVELS, unreadable_fields
from fraudpipe.adapters.avro.schemas import CONTRACTS_DIR, Contract, load_schema_str
from fraudpipe.adapters.avro.serde import SCHEMA_NOT_FOUND, SUBJECT_NOT_FOUND, registry_errors
from fraudpipe.config import Settings
from fraudpipe.errors import (
    ConfigurationError,
    SchemaIncompatibleError,
    SchemaRegistryRequestError,
)

_NOT_FOUND = (SUBJECT_NOT_FOUND, SCHEMA_NOT_FOUND)
_NO_REASON = (
    "the registry refused the change without a reason, and no field-level cause was found "
    "locally: compare the .avsc with the registered versions"
)


@dataclass(frozen=True, slots=True)
class Registration:
    """What `register_contracts` found or did for one subject."""

    contract: Contract
    subject: str
    schema_id: int
    version: int
    registered: bool
    """True when this run added the version; False when the registry already had it."""
    compatibility: str
    compatibility_changed: bool
    """True when this run set the subject's compatibility level."""


class CheckStatus(StrEnum):
    """Where a local contract stands against its subject."""

    UNCHANGED = "unchanged"
    NEW_SUBJECT = "new subject, not yet registered"
    COMPATIBLE_CHANGE = "compatible change, not yet registered"
    INCOMPATIBLE = "incompatible"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """`check_contracts`' verdict on one contract."""

    contract: Contract
    subject: str
    status: CheckStatus
    compatibility: str | None
    """The subject's level in the registry (None for a new subject)."""
    expected_compatibility: str
    latest_version: int | None
    problems: tuple[str, ...] = ()
    """Why the change is refused, or why the subject's settings are wrong."""

    @property
    def ok(self) -> bool:
        """True when `contracts register` would succeed and leave the subject as configured."""
        return not self.problems


def register_contracts(
    client: SchemaRegistryClient,
    settings: Settings,
    contracts: Iterable[Contract] = tuple(Contract),
    *,
    directory: Path = CONTRACTS_DIR,
) -> list[Registration]:
    """Register each contract's schema under its subject and set the subject's compatibility.

    The level is set before a new version is registered, so that version is already judged by
    it. Re-running registers nothing and changes nothing.

    Args:
        client: Registry client.
        settings: Topics (hence subjects) and `schema_compatibility`.
        contracts: Which contracts; all three by default.
        directory: Where the `.avsc` files are.

    Returns:
        One `Registration` per contract, in order.

    Raises:
        ContractFileError: A local `.avsc` is unusable.
        SchemaIncompatibleError: The registry refused a new version (nothing was changed for
            that subject beyond its compatibility level; earlier subjects stay registered).
        ServiceUnavailableError: The registry cannot be reached.
    """
    level = _expected_level(settings)
    results = []
    for contract in contracts:
        subject = contract.subject(settings)
        schema = Schema(load_schema_str(contract, directory), "AVRO")
        with registry_errors(settings):
            current = _subject_level(client, subject)
            changed = current != level
            if changed:
                client.set_compatibility(subject, level)
            found = _lookup(client, subject, schema)
            if found is None:
                try:
                    client.register_schema(subject, schema)
                except SchemaRegistryError as exc:
                    if exc.http_status_code == 409:
                        raise SchemaIncompatibleError(subject, exc.error_message) from exc
                    raise
                found = _lookup(client, subject, schema)  # for its version number
                if found is None:
                    raise SchemaRegistryRequestError(
                        settings.schema_registry_url, 404, f"{subject} lost the version just added"
                    )
                registered = True
            else:
                registered = False
        results.append(
            Registration(
                contract=contract,
                subject=subject,
                schema_id=found[0],
                version=found[1],
                registered=registered,
                compatibility=level,
                compatibility_changed=changed,
            )
        )
    return results


def check_contracts(
    client: SchemaRegistryClient,
    settings: Settings,
    contracts: Iterable[Contract] = tuple(Contract),
    *,
    directory: Path = CONTRACTS_DIR,
) -> list[CheckResult]:
    """Compare each local `.avsc` with what its subject holds; changes nothing.

    The verdict is the registry's own (its compatibility-test endpoint, against every version
    the subject's level covers); the `problems` of a refused change come from applying Avro's
    resolution rules locally, since the registry's test endpoint gives no reasons.

    Args:
        client: Registry client.
        settings: Topics (hence subjects) and the expected `schema_compatibility`.
        contracts: Which contracts; all three by default.
        directory: Where the `.avsc` files are.

    Returns:
        One `CheckResult` per contract, in order; `ok` is False for an incompatible change or a
        subject whose compatibility level differs from the configured one.

    Raises:
        ContractFileError: A local `.avsc` is unusable.
        ServiceUnavailableError: The registry cannot be reached.
    """
    expected = _expected_level(settings)
    results = []
    for contract in contracts:
        subject = contract.subject(settings)
        text = load_schema_str(contract, directory)
        schema = Schema(text, "AVRO")
        with registry_errors(settings):
            versions = _versions(client, subject)
            if not versions:
                results.append(
                    CheckResult(contract, subject, CheckStatus.NEW_SUBJECT, None, expected, None)
                )
                continue
            level = _subject_level(client, subject) or "NONE"
            problems = []
            if level != expected:
                problems.append(
                    f"the subject's compatibility is {level}, not {expected}: "
                    "run `fraudpipe contracts register` to set it"
                )
            if _lookup(client, subject, schema) is not None:
                status = CheckStatus.UNCHANGED
            elif client.test_compatibility_all_versions(subject, schema, verbose=True):
                status = CheckStatus.COMPATIBLE_CHANGE
            else:
                status = CheckStatus.INCOMPATIBLE
                problems.extend(_explain(client, subject, text, versions, level) or [_NO_REASON])
        results.append(
            CheckResult(contract, subject, status, level, expected, versions[-1], tuple(problems))
        )
    return results


def _expected_level(settings: Settings) -> str:
    level = settings.schema_compatibility.upper()
    if level not in LEVELS:
        raise ConfigurationError(
            f"schema_compatibility {settings.schema_compatibility!r} is not a registry "
            f"compatibility level: set FRAUDPIPE_SCHEMA_COMPATIBILITY to one of {sorted(LEVELS)}"
        )
    return level


def _subject_level(client: SchemaRegistryClient, subject: str) -> str | None:
    """The subject's own compatibility level; None when it has none (or does not exist)."""
    try:
        return client.get_compatibility(subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return None
        raise


def _versions(client: SchemaRegistryClient, subject: str) -> list[int]:
    try:
        return sorted(client.get_versions(subject))
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return []
        raise


def _lookup(client: SchemaRegistryClient, subject: str, schema: Schema) -> tuple[int, int] | None:
    """(schema id, version) of `schema` under `subject`, None when the subject lacks it."""
    try:
        found = client.lookup_schema(subject, schema)
    except SchemaRegistryError as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise
    if found.schema_id is None or found.version is None:
        return None
    return found.schema_id, found.version


def _explain(
    client: SchemaRegistryClient, subject: str, local: str, versions: list[int], level: str
) -> list[str]:
    """Field-level reasons why `local` breaks `level` against the subject's versions."""
    scope, new_reads_old, old_reads_new = LEVELS[level]
    checked = versions if scope == "all" else versions[-1:] if scope == "latest" else []
    problems: list[str] = []
    for version in checked:
        registered = client.get_version(subject, version).schema.schema_str
        if registered is None:
            continue
        label = f"registered version {version}"
        # A field broken in both directions (a type change under FULL) is reported once.
        by_field: dict[str, str] = {}
        if new_reads_old:
            by_field |= unreadable_fields(
                local, registered, reader_label="the local .avsc", writer_label=label
            )
        if old_reads_new:
            forward = unreadable_fields(
                registered, local, reader_label=label, writer_label="the local .avsc"
            )
            by_field |= {k: v for k, v in forward.items() if k not in by_field}
        problems.extend(by_field.values())
    return problems


def delete_subject_completely(client: SchemaRegistryClient, subject: str) -> None:
    """Delete a subject soft, then permanently; a subject never registered or already gone is
    fine. For throwaway subjects (tests and benchmarks register under names of their own)."""
    for permanent in (False, True):
        try:
            client.delete_subject(subject, permanent=permanent)
        except SchemaRegistryError as exc:
            if exc.http_status_code != 404:
                raise
