"""What an API key may do: its scopes, checked on every tenant request.

A key's scopes are a list of:

- ``*``: everything (the default, and what keys made before scopes existed keep);
- ``read``: every read (GET) of the tenant API;
- ``<resource>:read`` or ``<resource>:write``: one resource, named as the path names it
  (``/v1/customers/...`` is ``customers``); ``write`` covers its reads too.

A request to ``/v1/<resource>/...`` reads with GET (and HEAD) and writes with any other method,
actions included (``POST /v1/invoices/{id}/pay`` writes ``invoices``; so does a preview, although
it writes nothing). ``GET /v1/tenant`` answers who the key belongs to and needs no scope.
"""

from __future__ import annotations

from collections.abc import Sequence

# The tenant API's resources: tests/platform/test_api_key_scopes.py fails if a route names another.
RESOURCES = (
    "billing-settings",
    "customers",
    "events",
    "invoice-items",
    "invoices",
    "payments",
    "plans",
    "products",
    "provider-accounts",
    "provider-events",
    "refunds",
    "subscriptions",
    "test-clocks",
    "usage-records",
    "webhook-endpoints",
)
EVERYTHING = "*"
READ = "read"
UNSCOPED = frozenset({"tenant"})  # GET /v1/tenant: the key's own tenant
_READING = frozenset({"GET", "HEAD"})
VALID = frozenset({EVERYTHING, READ, *(f"{r}:{access}" for r in RESOURCES for access in ("read", "write"))})


def invalid(scopes: Sequence[str]) -> list[int]:
    """The positions of the scopes that are not scopes (for a 422 naming ``scopes[i]``)."""
    return [index for index, scope in enumerate(scopes) if scope not in VALID]


def needed(method: str, path: str) -> str | None:
    """The scope a request needs, as ``<resource>:<read|write>``; None when it needs none."""
    _, version, resource, *_ = [*path.split("/", 3), "", ""]  # "/v1/customers/1" -> "", "v1", "customers"
    if version != "v1":
        resource = ""
    if resource in UNSCOPED:
        return None
    return f"{resource}:{'read' if method.upper() in _READING else 'write'}"


def allows(scopes: Sequence[str], scope: str | None) -> bool:
    """Whether ``scopes`` grant ``scope`` (as ``needed`` gives it)."""
    if scope is None or EVERYTHING in scopes or scope in scopes:
        return True
    resource, _, access = scope.partition(":")
    return access == "read" and (READ in scopes or f"{resource}:write" in scopes)
