"""GET /metrics: the Prometheus text exposition of this deployment's API processes."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotAuthorizedException
from prometheus_client import CONTENT_TYPE_LATEST

from billplane.observability.metrics import exposition
from billplane.observability.queue_metrics import queue_snapshot

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="billplane-metrics"'}


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus metrics, for `Authorization: Bearer <BILLPLANE_METRICS_TOKEN>` (unset: the admin key).

    Never open: the samples name tenants (their request counts) and show the job queue, which is
    no business of a tenant or of anyone else who can reach the API port.
    """
    runtime = request.app.state.runtime
    settings = runtime.settings
    token: str | None = settings.observability.metrics_token or settings.security.admin_key
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if token is None or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise NotAuthorizedException(
            "send the metrics token (or, when none is configured, the admin key): 'Authorization: Bearer <token>'",
            headers=_CHALLENGE,
        )
    snapshot = await queue_snapshot(runtime.database)
    return Response(exposition(snapshot), media_type=CONTENT_TYPE_LATEST)
