"""Which limit applies to a tenant's request, the 429 when it is over, and the RateLimit headers.

Enforced where a tenant API key is authenticated (``billplane.api.auth.authenticate``), so the
operator API, ``/health`` and inbound provider webhooks (which carry no tenant key) are never
limited, and a refused request is refused before it takes a database connection or looks at an
``Idempotency-Key``: a 429 is never stored as a key's first response.
"""

from __future__ import annotations

from litestar.exceptions import HTTPException
from litestar.types import Message, Scope

from billplane.ratelimit.bucket import Decision, TenantLimiter
from billplane.settings import RateLimitSettings
from billplane_tenants import KeyPrincipal

HTTP_429_TOO_MANY_REQUESTS = 429
_STATE_KEY = "billplane_rate_limit"


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """The ``RateLimit-*`` fields of draft-ietf-httpapi-ratelimit-headers (its -07 form)."""
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_seconds),
    }


class RateLimitedError(HTTPException):
    status_code = HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, decision: Decision) -> None:
        seconds = decision.retry_after_seconds
        super().__init__(
            detail=f"this tenant is over its request rate limit; retry in {seconds} s",
            headers={"Retry-After": str(seconds), **rate_limit_headers(decision)},
        )


class RateLimits:
    """The process's limiter: the settings' default, or the operator's override for the tenant."""

    def __init__(self, settings: RateLimitSettings, limiter: TenantLimiter | None = None) -> None:
        self.default = (settings.per_second, settings.burst)
        self.limiter = limiter or TenantLimiter()

    def enforce(self, scope: Scope, principal: KeyPrincipal) -> None:
        """Count the request against its tenant; raise the 429 when the tenant is over its limit."""
        per_second, burst = principal.rate_limit or self.default
        if per_second == 0:  # unlimited
            return
        decision = self.limiter.admit(principal.tenant_id, per_second, burst)
        if not decision.allowed:
            raise RateLimitedError(decision)
        scope["state"][_STATE_KEY] = decision


async def add_rate_limit_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: an admitted tenant request's response says how much is left.

    A 429 already carries them (with ``Retry-After``); other responses have no decision.
    """
    if message["type"] != "http.response.start":
        return
    state = scope.get("state")
    decision: Decision | None = state.get(_STATE_KEY) if state is not None else None
    if decision is None:
        return
    message["headers"] = [
        *message.get("headers", ()),
        (b"ratelimit-limit", b"%d" % decision.limit),
        (b"ratelimit-remaining", b"%d" % decision.remaining),
        (b"ratelimit-reset", b"%d" % decision.reset_seconds),
    ]
