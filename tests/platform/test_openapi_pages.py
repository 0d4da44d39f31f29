"""/schema's pages load nothing from another host: every script, stylesheet, font and icon is served here.

billplane is self-hosted: an operator's browser may have no internet access, and a CDN's script on
a page of the API would run whatever that CDN serves.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from litestar import Litestar
from litestar.testing import AsyncTestClient

PAGES = ("/schema", "/schema/swagger")
# What each kind of reference must be served as.
CONTENT_TYPES = {"script": "javascript", "stylesheet": "text/css", "icon": "image/", "font": "font/"}
# A stylesheet's own loads: url(...) (fonts, images) and @import "...".
_CSS_LOADS = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


class _References(HTMLParser):
    """Every src and href of a page, with the kind of thing it loads."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        rel = (values.get("rel") or "").lower()
        for name in ("src", "href"):
            if value := values.get(name):
                kind = "script" if tag == "script" else "stylesheet" if "stylesheet" in rel else "icon"
                self.found.append((kind if tag in {"script", "link"} else tag, value))


def _off_host(url: str, host: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in {"", "http", "https"} or (bool(parts.netloc) and parts.netloc != host)


async def test_the_pages_load_everything_from_billplane(client: AsyncTestClient[Litestar]) -> None:
    host = urlsplit(str(client.base_url)).netloc
    loads: dict[str, str] = {}  # absolute URL: kind
    for page in PAGES:
        response = await client.get(page)
        assert response.status_code == 200, page
        parser = _References()
        parser.feed(response.text)
        assert {kind for kind, _ in parser.found} >= {"script", "stylesheet", "icon"}, (page, parser.found)
        for kind, reference in parser.found:
            if reference.startswith("data:"):  # inline: nothing is fetched
                continue
            assert not _off_host(reference, host), (page, reference)
            loads[urljoin(f"{client.base_url}{page}", reference)] = kind
    stylesheets = [url for url, kind in loads.items() if kind == "stylesheet"]
    for stylesheet in stylesheets:
        css = (await client.get(stylesheet)).text
        for found in _CSS_LOADS.finditer(css):
            reference = found.group(1) or found.group(2)
            if reference.startswith("data:"):  # inline: nothing is fetched
                continue
            assert not _off_host(reference, host), (stylesheet, reference)
            loads[urljoin(stylesheet, reference)] = "font" if re.search(r"\.(woff2?|ttf|otf|eot)\b", reference) else ""
    for url, kind in loads.items():
        served = await client.get(url)
        assert served.status_code == 200, url
        assert CONTENT_TYPES.get(kind, "") in served.headers["content-type"], (url, served.headers["content-type"])
