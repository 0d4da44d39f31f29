"""Optional tracing: one span per request with route and tenant when on; a clear line when not installed."""

from __future__ import annotations

import importlib.util
import logging

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from msgspec.structs import replace
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from billplane.app import create_app
from billplane.observability.middleware import ObservedApp
from billplane.settings import ObservabilitySettings, Settings
from tests.conftest import create_tenant


def _traced(settings: Settings) -> Settings:
    return replace(settings, observability=ObservabilitySettings(tracing=True))


async def test_each_request_is_a_span_with_its_route_and_tenant(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    app = create_app(_traced(settings))
    provider = trace.get_tracer_provider()  # billplane configured the SDK: nothing else had
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with AsyncTestClient(app) as client:
        tenant = await create_tenant(client, admin_headers, "traced")
        exporter.clear()
        response = await client.get("/v1/tenant", headers=tenant.headers | {"traceparent": parent})
        await client.get("/missing/path")
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["GET /v1/tenant", "GET _unmatched"]
    first = spans[0]
    assert first.attributes is not None
    assert dict(first.attributes) == {
        "http.request.method": "GET",
        "http.route": "/v1/tenant",
        "http.response.status_code": 200,
        "billplane.request_id": response.headers["x-request-id"],
        "billplane.tenant": tenant.slug,
    }
    assert first.kind == trace.SpanKind.SERVER
    assert f"{first.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"  # the caller's trace goes on


def test_asked_for_but_not_installed_says_so_and_serves_untraced(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)
    app: Litestar = create_app(_traced(settings))
    assert "BILLPLANE_TRACING is on but the opentelemetry package is not installed" in caplog.text
    assert [record.levelno for record in caplog.records if "opentelemetry" in record.getMessage()] == [logging.WARNING]
    handler = app.asgi_handler
    assert isinstance(handler, ObservedApp)
    assert handler.tracer is None


def test_tracing_is_off_by_default(settings: Settings) -> None:
    handler = create_app(settings).asgi_handler
    assert isinstance(handler, ObservedApp)
    assert handler.tracer is None
