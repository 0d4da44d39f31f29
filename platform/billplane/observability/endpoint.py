"""GET /metrics: the Prometheus text exposition of this deployment's API processes."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotAuthorizedException
from prometheus_client import CONTENT_TYPE_LATEST

from billplane.observability.metrics import exposition
from billplane.observability.queue_metrics import queue_snapshot

TOKEN_STATE_KEY = "metrics_token"  # noqa: S105 - the name of a state entry, not a token
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="billplane-metrics"'}


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus metrics; with BILLPLANE_METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    token: str | None = request.app.state.get(TOKEN_STATE_KEY)
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise NotAuthorizedException("send the metrics token: 'Authorization: Bearer <token>'", headers=_CHALLENGE)
    snapshot = await queue_snapshot(request.app.state.runtime.database)
    return Response(exposition(snapshot), media_type=CONTENT_TYPE_LATEST)
