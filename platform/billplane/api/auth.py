"""Bearer authentication: the operator's admin key and tenants' API keys.

Tenant keys resolve through a small in-process cache keyed by the key's digest (never the clear
key). Revocations, suspensions and deletions are announced to every process when they commit
(``billplane_tenants.announcements``), and each process drops that tenant's entries at once; so
while this process is listening, entries may live ``LISTENING_TTL_SECONDS``. While it is not
(starting, or its listening connection was lost, which also empties the cache), entries live only
``auth_cache_seconds``: the bound on how late a change is seen without announcements.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from billplane.api import scopes
from billplane.api.strict_json import refuse_bad_parameters
from billplane.ratelimit import RateLimits
from billplane.runtime import Runtime
from billplane_tenants import KeyPrincipal
from billplane_tenants.keys import key_digest

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="billplane"'}
_MAX_CACHED_KEYS = 10_000
_PRINCIPAL_STATE_KEY = "billplane_principal"


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization")
    if not header:
        raise NotAuthorizedException("missing Authorization header: send 'Bearer <key>'", headers=_CHALLENGE)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise NotAuthorizedException("malformed Authorization header: send 'Bearer <key>'", headers=_CHALLENGE)
    return token


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard for /v1/admin: only the operator key passes; tenant keys are simply not it."""
    token = bearer_token(connection)
    expected = runtime_of(connection).settings.security.admin_key
    if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise NotAuthorizedException("invalid admin key", headers=_CHALLENGE)


LISTENING_TTL_SECONDS = 300.0


OPERATOR_KEY_HERE = "this is the operator (admin) key, for /v1/admin only: use a tenant's API key here"


class KeyCache:
    def __init__(self, pepper: bytes, ttl_seconds: float) -> None:
        self._pepper = pepper
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, KeyPrincipal]] = {}
        # Bumped by every invalidation: a lookup that began before one does not cache what it read,
        # or an announcement heard during the lookup would be undone for the whole TTL.
        self._generation = 0
        # Set by the app while its change listener is connected: announcements then keep entries
        # honest, and a resolved key is trusted for LISTENING_TTL_SECONDS.
        self.listening: Callable[[], bool] = lambda: False

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    async def resolve(self, runtime: Runtime, key: str) -> KeyPrincipal | None:
        digest = key_digest(self._pepper, key)
        now = time.monotonic()
        cached = self._entries.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        generation = self._generation
        # Listening from before the read to after it, or what it read may be news the listener
        # missed while away (a revocation, a tenant deleted and its slug taken by a new one).
        heard_throughout = self.listening()
        async with runtime.database.control_session() as session:
            principal = await runtime.registry.resolve_key(session, key)
        if principal is None:
            self._entries.pop(digest, None)
            return None
        if generation != self._generation:
            return principal  # read before the invalidation: answered once, not kept
        if len(self._entries) >= _MAX_CACHED_KEYS:
            self._entries.clear()  # crude but bounded; a refill costs one indexed lookup per key
        ttl = LISTENING_TTL_SECONDS if heard_throughout and self.listening() else self._ttl
        self._entries[digest] = (now + ttl, principal)
        return principal

    def invalidate_tenant(self, tenant_id: int) -> None:
        self._generation += 1
        stale = [digest for digest, (_, principal) in self._entries.items() if principal.tenant_id == tenant_id]
        for digest in stale:
            del self._entries[digest]


async def authenticate(request: Request[Any, Any, Any]) -> KeyPrincipal:
    """The tenant behind the request's API key: 401 if unknown or revoked, 403 if suspended or
    if the key's scopes do not allow the request (``billplane.api.scopes``), 429 if over its rate
    limit (counted once per request)."""
    principal: KeyPrincipal | None = request.scope["state"].get(_PRINCIPAL_STATE_KEY)
    if principal is not None:
        return principal
    key = bearer_token(request)
    cache: KeyCache = request.app.state.key_cache
    runtime = runtime_of(request)
    principal = await cache.resolve(runtime, key)
    if principal is None:
        admin_key = runtime.settings.security.admin_key
        if admin_key is not None and hmac.compare_digest(key.encode(), admin_key.encode()):
            # Whoever sends it holds it already; the usual first mistake after `make run`.
            raise NotAuthorizedException(OPERATOR_KEY_HERE, headers=_CHALLENGE)
        raise NotAuthorizedException("unknown or revoked API key", headers=_CHALLENGE)
    if principal.status != "active":
        raise PermissionDeniedException("this tenant is suspended")
    limits: RateLimits = request.app.state.rate_limits
    limits.enforce(request.scope, principal)
    # Checked before the principal is kept for the request, so a second call cannot skip it.
    scope = scopes.needed(request.method, request.scope["path"])
    if not scopes.allows(principal.scopes, scope):
        raise PermissionDeniedException(f"this API key's scopes do not allow {scope}")
    request.scope["state"][_PRINCIPAL_STATE_KEY] = principal
    return principal


def principal_of(request: Request[Any, Any, Any]) -> KeyPrincipal:
    """The principal ``authenticate`` already resolved for this request (tenant routes only)."""
    principal: KeyPrincipal | None = request.scope["state"].get(_PRINCIPAL_STATE_KEY)
    if principal is None:
        raise RuntimeError("the request was not authenticated: ask for tenant_session first")
    return principal


async def provide_principal(request: Request[Any, Any, Any]) -> KeyPrincipal:
    """The `principal` dependency: see ``authenticate``. A route that takes nothing else (``/v1/tenant``)
    refuses unknown query parameters and NUL characters here, as the session dependencies do."""
    principal = await authenticate(request)
    refuse_bad_parameters(request)
    return principal
