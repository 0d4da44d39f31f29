"""OAuth2 access tokens, cached per PayPal app across adapters and fetched once under concurrency.

billplane builds a new adapter for every call, so a per-adapter token would mean one token fetch
per API call. The cache is process-wide, keyed by (API base, client id, a digest of the secret):
the digest keeps a tenant who knows another tenant's client id, but not its secret, from being
handed that tenant's token.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

TokenKey = tuple[str, str, str]
Fetch = Callable[[], Awaitable[tuple[str, int]]]  # -> (access token, expires_in seconds)

# A token is replaced this long before PayPal says it expires (at most half its life), so that a
# call started just before expiry does not reach PayPal with a dead token.
REFRESH_MARGIN = 300.0


def token_key(api_base: str, client_id: str, client_secret: str) -> TokenKey:
    digest = hashlib.sha256(f"{client_id}\0{client_secret}".encode()).hexdigest()
    return (api_base, client_id, digest)


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float


@dataclass
class TokenCache:
    """Tokens of every app this process talks to; ``clock`` is replaceable for tests."""

    clock: Callable[[], float] = time.monotonic
    _tokens: dict[TokenKey, _Token] = field(default_factory=dict)
    # asyncio locks belong to one event loop; a process may run several (tests do), so each loop
    # gets its own locks.
    _locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[TokenKey, asyncio.Lock]] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def _lock(self, key: TokenKey) -> asyncio.Lock:
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        return locks.setdefault(key, asyncio.Lock())

    def _valid(self, key: TokenKey) -> str | None:
        token = self._tokens.get(key)
        return token.value if token is not None and self.clock() < token.refresh_at else None

    async def get(self, key: TokenKey, fetch: Fetch, *, fresh: bool = False, refused: str | None = None) -> str:
        """A valid token for ``key``. ``fresh``: fetch a new one whatever is cached. ``refused``: PayPal
        just refused this token; any other valid one (fetched meanwhile by a concurrent call) will do."""
        value = None if fresh else self._valid(key)
        if value is not None and value != refused:
            return value
        async with self._lock(key):
            value = None if fresh else self._valid(key)
            if value is not None and value != refused:
                return value  # a concurrent call fetched it while this one waited
            value, expires_in = await fetch()
            margin = min(REFRESH_MARGIN, expires_in / 2)
            self._tokens[key] = _Token(value, self.clock() + expires_in - margin)
            return value


TOKENS = TokenCache()
