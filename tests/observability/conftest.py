"""Fixtures of the observability tests: the JSON log output captured beside caplog, a scraper."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from billplane.observability.formatters import JsonFormatter
from tests.conftest import ADMIN_KEY

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class JsonLog:
    """What billplane's JSON handler wrote, as text and as parsed lines."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def json_log(caplog: pytest.LogCaptureFixture) -> Iterator[JsonLog]:
    """Every record at DEBUG and above, through the real JsonFormatter, beside caplog."""
    log = JsonLog()
    handler = logging.StreamHandler(log.stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield log
    finally:
        root.removeHandler(handler)


async def scrape(client: AsyncTestClient[Litestar], headers: dict[str, str] | None = None) -> Samples:
    """GET /metrics, parsed with prometheus_client's own parser: (sample name, labels) -> value."""
    response = await client.get("/metrics", headers=headers or {"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
