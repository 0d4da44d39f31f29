"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, fields
from importlib.metadata import version
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OpenAPI, SecurityScheme
from litestar.types import ControllerRouterHandler

from billplane.api.auth import KeyCache, provide_principal
from billplane.api.openapi_problems import document_problems
from billplane.api.problems import EXCEPTION_HANDLERS
from billplane.api.responses import CapturingResponse
from billplane.api.schema_pages import SelfHostedSwaggerPlugin
from billplane.api.sessions import provide_tenant_session
from billplane.billing.routes import ROUTES as BILLING_ROUTES
from billplane.catalog.routes import ROUTES as CATALOG_ROUTES
from billplane.customers.routes import ROUTES as CUSTOMER_ROUTES
from billplane.events.routes import ROUTES as EVENT_ROUTES
from billplane.health.controller import health
from billplane.idempotency.store import IdempotentReplayError, replay_handler
from billplane.invoices.routes import ROUTES as INVOICE_ROUTES
from billplane.observability.logs import configure_logging
from billplane.observability.wiring import Observability
from billplane.payments.routes import ROUTES as PAYMENT_ROUTES
from billplane.provider_accounts.routes import ROUTES as PROVIDER_ACCOUNT_ROUTES
from billplane.ratelimit import RateLimits, add_rate_limit_headers
from billplane.runtime import Runtime
from billplane.settings import Settings, get_settings
from billplane.subscriptions.routes import ROUTES as SUBSCRIPTION_ROUTES
from billplane.tenancy.admin_controller import TenantAdminController
from billplane.tenancy.tenant_controller import CurrentTenantController
from billplane.usage.routes import ROUTES as USAGE_ROUTES
from billplane.webhooks.routes import ROUTES as WEBHOOK_ROUTES
from billplane.webhooks.routes import TENANT_ROUTES as PROVIDER_EVENT_ROUTES
from billplane_tenants import derive_pepper
from billplane_tenants.announcements import ChangeListener

MAX_BODY_BYTES = 1_048_576
logger = logging.getLogger("billplane")


def tenant_routes() -> list[ControllerRouterHandler]:
    """Every domain's tenant API, each listed in the domain's own `routes` module."""
    return [
        *CUSTOMER_ROUTES,
        *CATALOG_ROUTES,
        *SUBSCRIPTION_ROUTES,
        *INVOICE_ROUTES,
        *PAYMENT_ROUTES,
        *PROVIDER_ACCOUNT_ROUTES,
        *PROVIDER_EVENT_ROUTES,
        *USAGE_ROUTES,
        *EVENT_ROUTES,
        *BILLING_ROUTES,
    ]


class ProblemDocumentedOpenAPI(OpenAPI):
    """The app's OpenAPI document, rendered with its errors as the API sends them.

    Litestar describes a 400 of its own shape on every operation that takes input and nothing else,
    and marks every request body required; routes cannot say otherwise but one by one. The rendered
    document (what `/schema/openapi.json` serves and the docs are built from) is completed here
    instead: ``billplane.api.openapi_problems.document_problems``.
    """

    def to_schema(self) -> dict[str, Any]:
        return document_problems(super().to_schema())


class BillplaneOpenAPIConfig(OpenAPIConfig):
    """Litestar's config, building a ``ProblemDocumentedOpenAPI`` (its paths are added afterwards)."""

    def to_openapi_schema(self) -> OpenAPI:
        built = super().to_openapi_schema()
        return ProblemDocumentedOpenAPI(**{field.name: getattr(built, field.name) for field in fields(built)})


def openapi_config() -> OpenAPIConfig:
    bearer = "Authorization: Bearer <key>"
    path = "/schema"
    return BillplaneOpenAPIConfig(
        title="billplane",
        version=version("billplane"),
        description="Multi-tenant billing platform. Tenant routes take a tenant API key; /v1/admin the operator key.",
        path=path,
        use_handler_docstrings=True,
        # Swagger UI at /schema and /schema/swagger, loading nothing from another host (api.schema_pages).
        render_plugins=[SelfHostedSwaggerPlugin(path)],
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description=f"Tenant API key. {bearer}"),
                "adminKey": SecurityScheme(type="http", scheme="bearer", description=f"Operator key. {bearer}"),
            }
        ),
    )


class InProcessWorker:
    """A sync worker beside the API (``billplane run``), stopped gracefully before the runtime closes."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from billplane.sync.worker import run_worker  # noqa: PLC0415 - only API processes with a worker

        self.task = asyncio.create_task(run_worker(self.runtime, name="billplane-in-process"))
        self.task.add_done_callback(_report_worker_exit)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def _report_worker_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the in-process sync worker stopped", exc_info=task.exception())


# Pooled connections tenant requests may not hold: some read the control plane on a second one
# while they hold their own (a provider account's credentials, a tenant's default accounts), and a
# pool held entirely by such requests would leave each waiting for one more until its timeout.
NESTED_RESERVE = 1


def gate_size(settings: Settings) -> int:
    """How many tenant requests hold a connection at once (``api.sessions``)."""
    return max(1, settings.database.pool_size + settings.database.max_overflow - NESTED_RESERVE)


@dataclass(slots=True)
class Services:
    """What an app holds from its startup to its shutdown: its state, built fresh for each app."""

    runtime: Runtime
    key_cache: KeyCache
    changes: ChangeListener
    in_process: InProcessWorker | None

    @classmethod
    def build(cls, settings: Settings, *, worker: bool) -> Services:
        runtime = Runtime.from_settings(settings)
        key_cache = KeyCache(derive_pepper(settings.security.secret_key), settings.security.auth_cache_seconds)
        changes = ChangeListener(
            settings.database.listening_url, on_change=key_cache.invalidate_tenant, on_lost=key_cache.clear
        )
        key_cache.listening = lambda: changes.listening
        return cls(runtime, key_cache, changes, InProcessWorker(runtime) if worker else None)

    def state(self) -> State:
        settings = self.runtime.settings
        return State(
            {
                SERVICES_STATE_KEY: self,
                "runtime": self.runtime,
                "key_cache": self.key_cache,
                "rate_limits": RateLimits(settings.rate_limit),
                "connection_gate": asyncio.Semaphore(gate_size(settings)),
            }
        )

    async def start(self) -> None:
        self.changes.start()
        if self.in_process is not None:
            await self.in_process.start()

    async def stop(self) -> None:
        # Each step whatever the one before raised (a worker task that had died re-raises its
        # error): the runtime's pools are closed in any case.
        try:
            await self.changes.stop()
        finally:
            try:
                if self.in_process is not None:
                    await self.in_process.stop()
            finally:
                await self.runtime.close()


SERVICES_STATE_KEY = "services"


async def _start_services(app: Litestar) -> None:
    await app.state[SERVICES_STATE_KEY].start()


async def _stop_services(app: Litestar) -> None:
    await app.state[SERVICES_STATE_KEY].stop()


def renew_state(app: Litestar, settings: Settings, *, worker: bool = False) -> None:
    """Replace ``app``'s whole state with new services (a runtime, key cache, rate limits...) and
    its request metrics (the tenants they name) with new ones.

    ``create_app`` gives its app its first; the test suite gives one app of each settings new ones
    before each test, as building an app's routes costs a fifth of a second. Call it only while
    the app is not started: the old services are dropped, not stopped.
    """
    _give_state(app, settings, Observability.from_settings(settings), worker=worker)


def _give_state(app: Litestar, settings: Settings, observability: Observability, *, worker: bool) -> None:
    observability.attach(app)
    app.state = Services.build(settings, worker=worker).state()


def create_app(settings: Settings | None = None, *, worker: bool = False) -> Litestar:
    """The API; with ``worker=True`` also a sync worker in this process (``billplane run``)."""
    settings = settings or get_settings()
    observability = Observability.from_settings(settings)
    app = Litestar(
        route_handlers=[
            health,
            TenantAdminController,
            CurrentTenantController,
            *tenant_routes(),
            *WEBHOOK_ROUTES,
            *observability.route_handlers(),
        ],
        dependencies={
            "principal": Provide(provide_principal),
            "tenant_session": Provide(provide_tenant_session),
        },
        exception_handlers={**EXCEPTION_HANDLERS, IdempotentReplayError: replay_handler},
        response_class=CapturingResponse,
        before_send=[add_rate_limit_headers],
        openapi_config=openapi_config(),
        on_startup=[_start_services],
        on_shutdown=[_stop_services],
        request_max_body_size=MAX_BODY_BYTES,
        # Logging is the process's business (billplane.observability.logs): Litestar's default
        # config would replace the root handler with its own text format on every app created.
        logging_config=None,
    )
    _give_state(app, settings, observability, worker=worker)
    return app


def _configured_for_server_process() -> Settings:
    """A server process of ``billplane run --workers N`` sets up its own logging (they are spawned)."""
    settings = get_settings()
    configure_logging(settings.observability.log_level, settings.observability.log_format or "json")
    return settings


def create_app_with_worker() -> Litestar:
    """Factory for ``billplane run --workers N``: each server process runs its own sync worker."""
    return create_app(_configured_for_server_process(), worker=True)


def create_app_without_worker() -> Litestar:
    """Factory for ``billplane run --workers N --no-worker``."""
    return create_app(_configured_for_server_process())
