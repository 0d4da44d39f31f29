"""The outermost ASGI layer: request id, log context, access log line, metrics and span per request.

It wraps Litestar's whole handler (``app.asgi_handler``), outside routing and exception
handling, so it sees every request: a 404 that matched no route, a 401 from authentication, a
500 turned into a problem response. Per request it costs a context variable, a closure for
``send``, two clock reads, two dict lookups for metric children and, only when the access
logger is enabled at that level, one log record.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from billplane.observability.context import RequestContext, current_request
from billplane.observability.metrics import UNMATCHED_ROUTE, RequestMetrics

REQUEST_ID_HEADER = b"x-request-id"
# An incoming id is kept when it is short and plain (a UUID, a trace id, a load balancer's id);
# anything else is replaced, so a client cannot inject text into log lines through it.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# Probes and scrapes arrive every few seconds: their access lines go at DEBUG.
QUIET_ROUTES = frozenset({"/health", "/metrics"})
access_logger = logging.getLogger("billplane.access")


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SANE_ID.fullmatch(value):
                return value.decode()
            break
    return os.urandom(16).hex()


class ObservedApp:
    def __init__(self, app: Any, metrics: RequestMetrics, tracer: Any = None) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer  # an OpenTelemetry tracer, or None (tracing off)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope["headers"])
        header = (REQUEST_ID_HEADER, request_id.encode())
        context = RequestContext(request_id, scope["method"], scope)
        token = current_request.set(context)
        status = 500  # what the client gets if the app raised without answering

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        started = time.perf_counter()
        try:
            if self.tracer is None:
                await self.app(scope, receive, send_with_id)
            else:
                await self._traced(scope, receive, send_with_id, context, lambda: status)
        finally:
            seconds = time.perf_counter() - started
            self._finished(context, status, seconds)
            current_request.reset(token)

    def _finished(self, context: RequestContext, status: int, seconds: float) -> None:
        route, tenant = context.route, context.tenant
        if route is None:
            route = context.fallback_route = UNMATCHED_ROUTE
        self.metrics.observe(route, context.method, status, seconds, tenant)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if access_logger.isEnabledFor(level):
            access_logger.log(
                level,
                "%s %s %d",
                context.method,
                route,
                status,
                extra={"status": status, "duration_ms": round(seconds * 1000, 3)},
            )

    async def _traced(self, scope: Any, receive: Any, send: Any, context: RequestContext, status: Any) -> None:
        from opentelemetry import propagate, trace  # noqa: PLC0415 - only with tracing on

        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        with self.tracer.start_as_current_span(
            context.method, context=propagate.extract(carrier), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send)
            finally:
                route = context.route or UNMATCHED_ROUTE
                span.update_name(f"{context.method} {route}")
                span.set_attribute("http.request.method", context.method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status())
                span.set_attribute("billplane.request_id", context.request_id)
                if (tenant := context.tenant) is not None:
                    span.set_attribute("billplane.tenant", tenant)
                if status() >= 500:  # noqa: PLR2004 - server errors mark the span, client errors do not
                    span.set_status(trace.StatusCode.ERROR)
