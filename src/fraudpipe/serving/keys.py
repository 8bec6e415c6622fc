"""Who may call the scoring API: named keys from `Settings.api_keys` (``name=key,...``).

A presented key is compared with every configured key in constant time (`hmac.compare_digest`),
so the time an answer takes says nothing about how close a guess was. The key's name, never
the key, is what the decisions record.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

from fraudpipe.errors import ConfigurationError

#: A key shorter than this is refused at start-up: it could be guessed.
MIN_KEY_LENGTH: Final = 16
_MAX_NAME: Final = 64


@dataclass(frozen=True)
class ApiKeys:
    """The configured keys, by name."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, configured: SecretStr | None) -> ApiKeys:
        """Read ``name=key`` pairs separated by commas.

        Raises:
            ConfigurationError: None configured, a pair without a name or key, a repeated
                name, or a key shorter than `MIN_KEY_LENGTH` (the error never shows a key).
        """
        if configured is None or not configured.get_secret_value().strip():
            raise ConfigurationError(
                "FRAUDPIPE_API_KEYS is not set: the scoring API needs at least one name=key "
                "pair (`make bootstrap` writes one to .env)"
            )
        keys: list[tuple[str, bytes]] = []
        for i, pair in enumerate(configured.get_secret_value().split(",")):
            name, sep, key = pair.strip().partition("=")
            name, key = name.strip(), key.strip()
            if not sep or not name or not key or len(name) > _MAX_NAME:
                raise ConfigurationError(
                    f"FRAUDPIPE_API_KEYS entry {i + 1} is not name=key (name of 1-64 characters)"
                )
            if any(name == known for known, _ in keys):
                raise ConfigurationError(f"FRAUDPIPE_API_KEYS names {name!r} twice")
            if len(key) < MIN_KEY_LENGTH:
                raise ConfigurationError(
                    f"FRAUDPIPE_API_KEYS: the key of {name!r} is shorter than "
                    f"{MIN_KEY_LENGTH} characters"
                )
            keys.append((name, key.encode()))
        return cls(tuple(keys))

    def who(self, presented: str | None) -> str | None:
        """The name of the key presented, or None if it is none of them."""
        if not presented:
            return None
        candidate = presented.encode()
        found = None
        for name, key in self.keys:  # every key compared, whichever matches
            if hmac.compare_digest(candidate, key):
                found = name
        return found
