"""An empty database of its own for each test that deploys: `billplane migrate` must build the
control schema from nothing, as on a first `docker compose up`, and see only its own tenants."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _admin_execute, drop_database


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    name = f"billplane_deploy_{secrets.token_hex(4)}"
    asyncio.run(_admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    drop_database(server_url, name)
