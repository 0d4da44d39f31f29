"""GET /health reflects the database."""

from __future__ import annotations

import socket

from litestar.testing import AsyncTestClient

from billplane.app import create_app
from billplane.settings import DatabaseSettings, Settings


async def test_health_is_ok_when_the_database_answers(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_health_is_503_problem_when_the_database_is_down(settings: Settings) -> None:
    down = DatabaseSettings(url=f"postgresql+asyncpg://nobody@127.0.0.1:{_closed_port()}/none")
    app = create_app(Settings(database=down, security=settings.security))
    async with AsyncTestClient(app) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "the database is unreachable"
