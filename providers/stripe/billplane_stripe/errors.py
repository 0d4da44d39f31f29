"""Stripe's exceptions as billplane's errors: retry later, show Stripe's message, or refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import stripe

from billplane.plugins import InvalidCredentialsError, ProviderError, RetryableProviderError


def _message(error: stripe.StripeError) -> str:
    # user_message is Stripe's own text without the request id prefix of str(error).
    return error.user_message or type(error).__name__


def _retry_after(error: stripe.StripeError) -> float | None:
    raw = (error.headers or {}).get("retry-after") or (error.headers or {}).get("Retry-After")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return None


def error_body(error: stripe.StripeError) -> dict[str, Any]:
    """The ``error`` object of Stripe's answer, or an empty dict."""
    body = error.json_body if isinstance(error.json_body, dict) else {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else {}


def translate(error: stripe.StripeError, *, credentials_check: bool = False) -> ProviderError:
    """The billplane error for a Stripe failure (card errors are handled by the charge itself)."""
    message = _message(error)
    code = error.code or error_body(error).get("code")
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        if credentials_check:
            return InvalidCredentialsError(message, code=code)
        # A key revoked after it was connected: nothing a retry can fix until the tenant acts.
        return ProviderError(message, code=code or "authentication_failed")
    if isinstance(error, stripe.RateLimitError | stripe.APIConnectionError):
        return RetryableProviderError(message, retry_after=_retry_after(error), code=code)
    status = error.http_status or 0
    if isinstance(error, stripe.APIError) or status >= 500 or status == 429:  # noqa: PLR2004 - HTTP statuses
        return RetryableProviderError(message, retry_after=_retry_after(error), code=code)
    if isinstance(error, stripe.IdempotencyError):
        # The same key with other parameters: a bug on our side, never fixed by retrying.
        return ProviderError(message, code=code or "idempotency_key_in_use")
    return ProviderError(message, code=code)


@asynccontextmanager
async def stripe_errors(*, credentials_check: bool = False) -> AsyncIterator[None]:
    """Raise billplane's error for any Stripe failure inside the block."""
    try:
        yield
    except stripe.StripeError as error:
        raise translate(error, credentials_check=credentials_check) from error
