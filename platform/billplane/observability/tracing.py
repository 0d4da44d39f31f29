"""Optional OpenTelemetry spans, one per request, when BILLPLANE_TRACING is on.

billplane depends only on the OpenTelemetry API, and only if it is installed: it never requires
it. Where spans go is the SDK's business: install ``opentelemetry-sdk`` (and an exporter) and
configure it as usual, for example by starting billplane under ``opentelemetry-instrument``, or
let billplane set up the SDK (``configure_sdk``) when nothing else did.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

logger = logging.getLogger("billplane.tracing")
TRACER_NAME = "billplane"


class NotInstalledError(Exception):
    """Tracing was asked for, but the opentelemetry package is not importable."""


def request_tracer() -> Any:
    """The OpenTelemetry tracer for request spans; raises NotInstalledError without the package."""
    if importlib.util.find_spec("opentelemetry") is None or importlib.util.find_spec("opentelemetry.trace") is None:
        raise NotInstalledError("BILLPLANE_TRACING is on but the opentelemetry package is not installed")
    from opentelemetry import trace  # noqa: PLC0415 - optional, imported only when asked for

    configure_sdk()
    return trace.get_tracer(TRACER_NAME)


def configure_sdk() -> None:
    """Give the process an SDK tracer provider if the SDK is installed and none is set yet.

    Spans then go to the OTLP exporter when ``opentelemetry-exporter-otlp`` is installed (it
    reads the standard ``OTEL_EXPORTER_OTLP_*`` variables); otherwise they are created (and
    propagate context) but not exported, and a log line says so.
    """
    from opentelemetry import trace  # noqa: PLC0415

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # someone (opentelemetry-instrument, a test) configured it already
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        logger.warning("tracing: opentelemetry-sdk is not installed; spans are created but not recorded")
        return
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = TracerProvider(resource=Resource.create({"service.name": "billplane"}))
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
            OTLPSpanExporter,
        )
    except ImportError:
        logger.warning("tracing: no OTLP exporter installed (opentelemetry-exporter-otlp); spans are not exported")
    else:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
