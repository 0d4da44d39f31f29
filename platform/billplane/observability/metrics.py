"""The Prometheus metrics billplane keeps, and how one scrape reads them.

Several processes (``billplane run --workers N``) share numbers through prometheus_client's
multiprocess mode: each process writes its counters to files in one directory and a scrape of
any process reads them all. prometheus_client chooses the mode when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``; ``BILLPLANE_METRICS_DIR`` is copied to it here, before that import,
so every process that imports this module writes where `billplane run` told it.
"""

from __future__ import annotations

import os

from billplane.observability.multiprocess import METRICS_DIR_ENV, PROMETHEUS_DIR_ENV

if os.environ.get(METRICS_DIR_ENV) and not os.environ.get(PROMETHEUS_DIR_ENV):
    os.environ[PROMETHEUS_DIR_ENV] = os.environ[METRICS_DIR_ENV]

from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# The mode prometheus_client chose at its import (it cannot change afterwards in this process).
MULTIPROCESS_DIR = os.environ.get(PROMETHEUS_DIR_ENV) or None
UNMATCHED_ROUTE = "_unmatched"  # every request no route matched (404, 405): one label, not one per path
OTHER_TENANT = "_other"
OTHER_METHOD = "_other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_DURATION = Histogram(
    "billplane_http_request_duration_seconds",
    "HTTP request latency by route template, method and status (its _count is the request count).",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TENANT_REQUESTS = Counter(
    "billplane_tenant_requests",
    "Authenticated tenant API requests by tenant slug; tenants past BILLPLANE_METRICS_TENANT_LABELS "
    f"(per process) count as {OTHER_TENANT}.",
    ["tenant"],
)
SYNC_FAILURES = Counter(
    "billplane_provider_sync_failures",
    "Failed provider sync attempts (outbox rows) by provider; outcome retry: will be tried again, failed: gave up.",
    ["provider", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "billplane_webhook_deliveries",
    "Outbound webhook delivery attempts by outcome (delivered, retry, failed, disabled, skipped).",
    ["outcome"],
)


class RequestMetrics:
    """Per-request recording with label children looked up in a plain dict after the first time.

    ``labels()`` takes prometheus_client's registry lock and builds a key on every call; the
    children it returns are cached here instead, so a request costs two dict lookups and the
    observe. Labels are bounded: routes are the app's templates plus ``_unmatched``, methods the
    standard ones plus ``_other``, status codes the few HTTP defines, tenants the first
    ``tenant_labels`` slugs seen by this process plus ``_other``.
    """

    def __init__(self, tenant_labels: int) -> None:
        self.tenant_labels = tenant_labels
        self._durations: dict[tuple[str, str, int], Histogram] = {}
        self._tenants: dict[str, Counter] = {}
        self._labelled = 0
        self._other = TENANT_REQUESTS.labels(OTHER_TENANT)

    def observe(self, route: str | None, method: str, status: int, seconds: float, tenant: str | None) -> None:
        key = (route or UNMATCHED_ROUTE, method, status)
        child = self._durations.get(key)
        if child is None:
            label_method = method if method in _METHODS else OTHER_METHOD
            child = self._durations[key] = REQUEST_DURATION.labels(key[0], label_method, str(status))
        child.observe(seconds)
        if tenant is not None:
            counter = self._tenants.get(tenant)
            if counter is None:
                counter = self._tenant_counter(tenant)
            counter.inc()

    def _tenant_counter(self, tenant: str) -> Counter:
        if self._labelled < self.tenant_labels:
            self._labelled += 1
            counter = TENANT_REQUESTS.labels(tenant)
        else:
            counter = self._other
        self._tenants[tenant] = counter  # bounded by the number of tenants that exist
        return counter


def sync_failure(provider: str, outcome: str) -> None:
    SYNC_FAILURES.labels(provider, outcome).inc()


def webhook_delivery(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()


class _Joined(Collector):
    def __init__(self, sources: Iterable[Collector]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def exposition(*extra: Collector) -> bytes:
    """The text exposition of this process (or, in multiprocess mode, of every process) plus ``extra``."""
    # prometheus_client leaves this constructor unannotated.
    base: Collector = MultiProcessCollector(None, MULTIPROCESS_DIR) if MULTIPROCESS_DIR else REGISTRY  # type: ignore[no-untyped-call]
    return generate_latest(_Joined([base, *extra]))
