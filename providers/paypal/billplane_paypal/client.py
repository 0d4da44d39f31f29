"""A thin async client for PayPal's REST API (ADR 0005): OAuth2, request ids, PayPal's errors.

One client per adapter, one short-lived httpx connection per call (as billplane builds an adapter
per call anyway); the TLS context and the tokens are shared by the whole process.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from functools import cache
from typing import Any

import httpx
import msgspec

from billplane.plugins import InvalidCredentialsError, ProviderError, RetryableProviderError
from billplane_paypal.credentials import PayPalCredentials
from billplane_paypal.tokens import TOKENS, TokenKey, token_key

DEFAULT_TIMEOUT = 10.0
Json = dict[str, Any]


@cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs more than a whole call to a local fake: once per process.
    return ssl.create_default_context()


def _basic(credentials: PayPalCredentials) -> str:
    pair = f"{credentials.client_id}:{credentials.client_secret}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: the sync engine's own backoff is close enough
        return None


def _json(response: httpx.Response) -> Json:
    if not response.content:
        return {}
    try:
        decoded = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def error_from(response: httpx.Response) -> ProviderError:
    """PayPal's answer as billplane's error: its ``name``, ``message`` and the ``issue`` of each detail."""
    status = response.status_code
    if status == httpx.codes.TOO_MANY_REQUESTS or response.is_server_error:
        return RetryableProviderError(f"PayPal answered HTTP {status}", retry_after=_retry_after(response))
    body = _json(response)
    name = body.get("name") or body.get("error")
    message = str(body.get("message") or body.get("error_description") or f"HTTP {status}")
    issues = [
        str(detail.get("issue"))
        for detail in body.get("details") or []
        if isinstance(detail, dict) and detail.get("issue")
    ]
    if issues:
        message = f"{message} ({', '.join(issues)})"
    code = issues[0] if len(issues) == 1 else (str(name) if name else None)
    if status == httpx.codes.UNAUTHORIZED:
        return InvalidCredentialsError(f"PayPal refused the credentials: {message}", code=code)
    return ProviderError(f"PayPal: {message}", code=code)


class PayPalClient:
    def __init__(self, api_base: str, credentials: PayPalCredentials, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._base = api_base.rstrip("/")
        self._credentials = credentials
        self._timeout = timeout
        self._key: TokenKey = token_key(self._base, credentials.client_id, credentials.client_secret)

    def __repr__(self) -> str:
        return f"PayPalClient({self._base!r}, client_id={self._credentials.client_id!r})"

    async def _send(
        self, method: str, path: str, *, headers: Mapping[str, str], content: bytes | None, seconds: float
    ) -> httpx.Response:
        try:
            async with httpx.AsyncClient(base_url=self._base, timeout=seconds, verify=_tls()) as client:
                return await client.request(method, path, headers=headers, content=content)
        except httpx.TimeoutException:
            raise RetryableProviderError(f"PayPal did not answer within {seconds:g} s") from None
        except httpx.HTTPError as exc:
            # The exception's text may hold the URL, never credentials, but keep to its type.
            raise RetryableProviderError(f"PayPal is unreachable: {type(exc).__name__}") from None

    async def _fetch_token(self) -> tuple[str, int]:
        response = await self._send(
            "POST",
            "/v1/oauth2/token",
            headers={
                "Authorization": _basic(self._credentials),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            content=b"grant_type=client_credentials",
            seconds=self._timeout,
        )
        if response.is_error:
            raise error_from(response)
        body = _json(response)
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not isinstance(expires_in, int):
            raise RetryableProviderError("PayPal answered the token request without a token")
        return token, expires_in

    async def check_token(self) -> None:
        """Fetch a new token: whether PayPal accepts the app's id and secret today."""
        await TOKENS.get(self._key, self._fetch_token, fresh=True)

    async def call(
        self,
        method: str,
        path: str,
        *,
        request_id: str | None = None,
        body: object = None,
        content: bytes | None = None,
        seconds: float | None = None,
    ) -> Json:
        """One API call; a refused token is replaced once and the call made once more."""
        headers = {"Accept": "application/json"}
        if method in {"POST", "PATCH"}:
            headers["Prefer"] = "return=representation"
            if request_id is not None:
                headers["PayPal-Request-Id"] = request_id
        if body is not None:
            content = msgspec.json.encode(body)
        if content is not None:
            headers["Content-Type"] = "application/json"
        refused: str | None = None
        while True:
            token = await TOKENS.get(self._key, self._fetch_token, refused=refused)
            response = await self._send(
                method,
                path,
                headers={**headers, "Authorization": f"Bearer {token}"},
                content=content,
                seconds=seconds or self._timeout,
            )
            if response.status_code == httpx.codes.UNAUTHORIZED and refused is None:
                refused = token  # revoked or expired early: one other token, one more try
                continue
            if response.is_error:
                raise error_from(response)
            return _json(response)
