"""Per-tenant request-rate limits: token buckets in each API process (docs/operations/limits.md)."""

from billplane.ratelimit.bucket import Decision, TenantLimiter
from billplane.ratelimit.policy import RateLimitedError, RateLimits, add_rate_limit_headers

__all__ = ["Decision", "RateLimitedError", "RateLimits", "TenantLimiter", "add_rate_limit_headers"]
