"""/schema's interactive page, Swagger UI, with every file it loads served by billplane itself.

billplane is self-hosted: an operator's browser may have no internet access, and a CDN's script on
a page of the API would run whatever that CDN serves. Litestar's pages load theirs from CDNs; this
one loads Swagger UI from the pinned ``swagger-ui-bundle-v2`` distribution (its version is Swagger
UI's), served under ``/schema/assets/<version>/``: only the files the page uses, so no other file of
the bundle (its demo page loads a document from another host) is served. Scalar, Litestar's default
page, is not offered: no PyPI distribution ships it, and its bundle calls scalar.com's services (fonts,
a request proxy, an AI agent) unless each is turned off.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from importlib.resources import files

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath

SWAGGER_UI = version("swagger-ui-bundle-v2")
ASSETS = f"/assets/{SWAGGER_UI}"
# The files the page loads, each with the type it is served as.
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# The URL names the version: a browser may keep a file until billplane serves another Swagger UI.
_CACHE_CONTROL = "public, max-age=31536000, immutable"


@cache
def _read(name: str) -> bytes:
    return files("swagger_ui_bundle").joinpath(f"vendor/swagger-ui-{SWAGGER_UI}", name).read_bytes()


def _swagger_ui_file(file_name: FromPath[str]) -> Response[bytes]:
    if file_name not in _FILES:
        raise NotFoundException(f"no Swagger UI file {file_name!r}")
    return Response(_read(file_name), media_type=_FILES[file_name], headers={"Cache-Control": _CACHE_CONTROL})


class SelfHostedSwaggerPlugin(SwaggerRenderPlugin):
    """Litestar's Swagger UI page, its files served from ``{schema_path}/assets/<version>/``."""

    def __init__(self, schema_path: str) -> None:
        assets = f"{schema_path}{ASSETS}"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
            path="/swagger",
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            get(f"{ASSETS}/{{file_name:str}}", include_in_schema=False, sync_to_thread=False)(_swagger_ui_file)
        )
