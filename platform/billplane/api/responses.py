"""The app's Response class: records the encoded first response for Idempotency-Key storage.

Litestar builds the ASGI response before it closes the request's dependencies, so the session
dependency can store exactly these bytes in the same transaction, before the commit.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.enums import MediaType
from litestar.response.base import ASGIResponse
from litestar.utils.helpers import get_enum_string_value

from billplane.idempotency.store import HEADER, CapturedResponse

CAPTURE_STATE_KEY = "billplane_captured_response"


class CapturingResponse(Response[Any]):
    def to_asgi_response(self, app: Any, request: Request[Any, Any, Any], **kwargs: Any) -> ASGIResponse:
        asgi = super().to_asgi_response(app, request, **kwargs)
        if request.method != "POST" or HEADER not in request.headers:
            return asgi  # only a POST with an Idempotency-Key has a first response to keep
        media_type = get_enum_string_value(self.media_type or kwargs.get("media_type") or MediaType.JSON)
        request.state[CAPTURE_STATE_KEY] = CapturedResponse(asgi.status_code, media_type, asgi.body)
        return asgi
