"""Idempotency-Key on POST: replay, mismatch, in-flight conflict, sealing, expiry."""

from __future__ import annotations

import threading
import time

import asyncpg
import psycopg
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from billplane.runtime import Runtime
from tests.conftest import unique_slug

Client = AsyncTestClient[Litestar]
TENANTS = "/v1/admin/tenants"


def _with_key(headers: dict[str, str], key: str) -> dict[str, str]:
    return headers | {"Idempotency-Key": key}


async def _count(runtime: Runtime, slug: str) -> int:
    async with runtime.database.control_session() as session:
        return int(await session.scalar(text("SELECT count(*) FROM control.tenants WHERE slug = :s"), {"s": slug}))


async def test_a_retry_replays_the_first_response(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    key, body = unique_slug("key"), {"slug": unique_slug(), "name": "Once"}
    first = await client.post(TENANTS, json=body, headers=_with_key(admin_headers, key))
    again = await client.post(TENANTS, json=body, headers=_with_key(admin_headers, key))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # the same tenant and the same (once shown) key
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(runtime, body["slug"]) == 1


async def test_the_same_key_with_another_body_is_422(client: Client, admin_headers: dict[str, str]) -> None:
    key = unique_slug("key")
    await client.post(TENANTS, json={"slug": unique_slug(), "name": "A"}, headers=_with_key(admin_headers, key))
    other = await client.post(TENANTS, json={"slug": unique_slug(), "name": "B"}, headers=_with_key(admin_headers, key))
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_a_key_still_in_flight_is_409(
    client: Client, admin_headers: dict[str, str], database_url: str, runtime: Runtime
) -> None:
    key, body = unique_slug("key"), {"slug": unique_slug(), "name": "Busy"}
    # Another request holding the key looks, to the database, like this lock held elsewhere.
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", f"admin:{key}")
        busy = await client.post(TENANTS, json=body, headers=_with_key(admin_headers, key))
        assert busy.status_code == 409
        assert await _count(runtime, body["slug"]) == 0
    finally:
        await holder.close()
    done = await client.post(TENANTS, json=body, headers=_with_key(admin_headers, key))
    assert done.status_code == 201


async def test_a_failed_request_stores_nothing(client: Client, admin_headers: dict[str, str]) -> None:
    key, slug = unique_slug("key"), unique_slug()
    refused = await client.post(TENANTS, json={"slug": slug}, headers=_with_key(admin_headers, key))
    assert refused.status_code == 422
    fixed = await client.post(TENANTS, json={"slug": slug, "name": "Fixed"}, headers=_with_key(admin_headers, key))
    assert fixed.status_code == 201


async def test_stored_responses_are_sealed(client: Client, admin_headers: dict[str, str], runtime: Runtime) -> None:
    key = unique_slug("key")
    created = await client.post(
        TENANTS, json={"slug": unique_slug(), "name": "S"}, headers=_with_key(admin_headers, key)
    )
    api_key = created.json()["api_key"]["key"]
    async with runtime.database.control_session() as session:
        stored = await session.scalar(
            text("SELECT response_body FROM control.idempotency_keys WHERE key = :k"), {"k": key}
        )
    assert stored is not None
    assert api_key.encode() not in stored
    assert b"tenant" not in stored


async def test_expired_keys_are_forgotten_and_purged(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    key = unique_slug("key")
    await client.post(TENANTS, json={"slug": unique_slug(), "name": "Old"}, headers=_with_key(admin_headers, key))
    async with runtime.database.control_session() as session:
        await session.execute(
            text("UPDATE control.idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = :k"),
            {"k": key},
        )
    fresh = await client.post(
        TENANTS, json={"slug": unique_slug(), "name": "New"}, headers=_with_key(admin_headers, key)
    )
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    async with runtime.database.control_session() as session:
        expired = await session.scalar(text("SELECT count(*) FROM control.idempotency_keys WHERE expires_at < now()"))
    assert expired == 0


async def test_malformed_keys_are_422(client: Client, admin_headers: dict[str, str]) -> None:
    for bad in ["x" * 256, "has space", "tab\tkey"]:
        response = await client.post(
            TENANTS, json={"slug": unique_slug(), "name": "x"}, headers=_with_key(admin_headers, bad)
        )
        assert response.status_code == 422, bad
        assert response.json()["errors"][0] == {
            "field": "Idempotency-Key",
            "source": "header",
            "message": "must be 1-255 visible ASCII characters",
        }


async def test_purging_expired_keys_passes_over_one_another_request_holds(
    client: Client, admin_headers: dict[str, str], database_url: str
) -> None:
    """A request reusing an expired key deletes its row at once and holds it until it commits.
    Another request's purge of expired keys must not wait for it: it waited as long as that
    request ran, and two such requests deadlocked (503)."""
    held, other = unique_slug("old"), unique_slug("old")
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    # A plain connection, ended by a timer: a request waiting in the app blocks this test's loop.
    with psycopg.connect(dsn) as holder:
        holder.execute(
            "INSERT INTO control.idempotency_keys (key, fingerprint, method, path, response_status, "
            "response_content_type, response_body, expires_at) "
            "SELECT k, 'f', 'POST', '/v1/admin/tenants', 201, 'application/json', '', now() - interval '1 day' "
            "FROM unnest(%s::text[]) AS k",
            [[held, other]],
        )
        holder.commit()
        holder.execute("DELETE FROM control.idempotency_keys WHERE key = %s", [held])  # a request reusing it
        release = threading.Timer(5, holder.rollback)
        release.start()
        started = time.monotonic()
        body = {"slug": unique_slug(), "name": "Purging"}
        made = await client.post(TENANTS, json=body, headers=_with_key(admin_headers, unique_slug("key")))
        waited = time.monotonic() - started
        release.cancel()
        release.join()
        holder.rollback()
        left = holder.execute("SELECT key FROM control.idempotency_keys WHERE key = ANY(%s)", [[held, other]])
        kept = [row[0] for row in left.fetchall()]
    assert made.status_code == 201, made.text
    assert waited < 4, f"the purge waited {waited:.1f} s for the expired key another request holds"
    assert kept == [held]  # the other expired key was purged, the held one passed over
