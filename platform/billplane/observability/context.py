"""What a log line knows about the work it is part of: the request, or the job.

One context variable per kind of work, holding a small object set once at the start: a log
record reads it (``records.py``); nothing is formatted or copied per log call until a record
is actually emitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from billplane_tenants.naming import SCHEMA_PREFIX as TENANT_SCHEMA_PREFIX

# Where billplane.api.auth keeps the resolved principal in the ASGI scope's state; read lazily,
# so authentication needs no hook to tell the logs which tenant a request belongs to.
PRINCIPAL_STATE_KEY = "billplane_principal"


class RequestContext:
    """One request: its id and method now; its route and tenant read from the ASGI scope when asked."""

    __slots__ = ("fallback_route", "method", "request_id", "scope")

    def __init__(self, request_id: str, method: str, scope: dict[str, Any]) -> None:
        self.request_id = request_id
        self.method = method
        self.scope = scope
        # Set when the response is done and no route matched, so the access line names one.
        self.fallback_route: str | None = None

    @property
    def route(self) -> str | None:
        """The route template (``/v1/customers/{customer_id}``), once Litestar's router matched one."""
        template: str | None = self.scope.get("path_template")
        return template or self.fallback_route

    @property
    def tenant(self) -> str | None:
        """The tenant slug, once authentication resolved the request's API key."""
        principal = self.scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
        slug: str | None = getattr(principal, "slug", None)
        return slug


current_request: ContextVar[RequestContext | None] = ContextVar("billplane_request", default=None)
current_job: ContextVar[dict[str, object] | None] = ContextVar("billplane_job", default=None)


@contextmanager
def job_context(
    task: str, job_id: int | None, *, tenant_id: int | None = None, schema: str | None = None
) -> Iterator[None]:
    """Log lines inside carry the job's id and task and, for tenant work, the tenant."""
    fields: dict[str, object] = {"task": task, "job_id": job_id, "tenant_id": tenant_id, "tenant_schema": schema}
    if schema is not None and schema.startswith(TENANT_SCHEMA_PREFIX):
        fields["tenant"] = schema.removeprefix(TENANT_SCHEMA_PREFIX)  # schemas are tenant_<slug>
    token = current_job.set({name: value for name, value in fields.items() if value is not None})
    try:
        yield
    finally:
        current_job.reset(token)
