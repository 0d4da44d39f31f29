"""Turning observability on for one app: secrets to scrub, the /metrics route, the ASGI layer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.types import ControllerRouterHandler
from sqlalchemy.engine import make_url

from billplane.observability.endpoint import metrics
from billplane.observability.metrics import RequestMetrics
from billplane.observability.middleware import ObservedApp
from billplane.observability.records import install_record_factory
from billplane.observability.redaction import remember_secrets
from billplane.observability.tracing import NotInstalledError, request_tracer
from billplane.settings import Settings

logger = logging.getLogger("billplane.observability")


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret in the settings, as it may appear in text: whole, and each encryption key alone."""
    security = settings.security
    found = [security.secret_key, security.admin_key, settings.observability.metrics_token]
    if security.encryption_keys:
        found.append(security.encryption_keys)
        for entry in security.encryption_keys.split(","):
            found.append(entry.strip())
            found.append(entry.partition(":")[2].strip())
    found.append(make_url(settings.database.url).password)
    found.append(make_url(settings.database.listening_url).password)
    return [value for value in found if value]


@dataclass(slots=True)
class Observability:
    settings: Settings
    metrics: RequestMetrics
    tracer: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Observability:
        install_record_factory()
        remember_secrets(*configured_secrets(settings))
        tracer = None
        if settings.observability.tracing:
            try:
                tracer = request_tracer()
            except NotInstalledError as exc:
                logger.warning("%s (pip install opentelemetry-sdk); requests are not traced", exc)
        return cls(settings, RequestMetrics(settings.observability.metrics_tenant_labels), tracer)

    def route_handlers(self) -> list[ControllerRouterHandler]:
        return [metrics] if self.settings.observability.metrics_enabled else []

    def attach(self, app: Litestar) -> None:
        """Wrap the app's whole ASGI handler (outside routing, see middleware.py), instead of the
        observability attached before, if any (``billplane.app.renew_state``)."""
        handler = app.asgi_handler
        inner = handler.app if isinstance(handler, ObservedApp) else handler
        app.asgi_handler = ObservedApp(inner, self.metrics, self.tracer)
