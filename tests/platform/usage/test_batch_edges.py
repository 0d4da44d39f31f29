"""POST /v1/usage-records at the edges of a batch: one event id refused and stored in the same
batch, and timestamps finer than a microsecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from billplane.runtime import Runtime
from tests.platform.usage.seed import NOW, Metered, metered_tenant, record, stamp
from tests.platform.usage.test_ingest import URL, post, stored

Client = AsyncTestClient[Litestar]


async def _ending_soon(runtime: Runtime, seed: Metered) -> tuple[int, datetime]:
    """The ``sum`` subscription, its open period ending in two minutes (within the clock skew
    allowed, so a record just before the end is not in the future): (its id, the end)."""
    sub = seed.subscriptions["sum"]
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
    async with runtime.database.tenant_session(seed.tenant.schema) as session:
        await session.execute(
            text("UPDATE subscriptions SET current_period_end = :end WHERE id = :id"),
            {
                "end": end,
                "id": sub,
            },
        )
    return sub, end


async def test_a_refused_record_is_not_a_duplicate_of_its_event_stored_in_the_same_batch(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    sub = seed.subscriptions["sum"]
    future = NOW + timedelta(hours=1)

    body = await post(
        client,
        seed.tenant,
        [record(sub, "k", 1, at=future), record(sub, "k", 2), record(sub, "j", 3), record(sub, "j", 4, at=future)],
    )

    outcomes = body["data"]
    assert isinstance(outcomes, list)
    assert [(o["client_event_id"], o["result"], o.get("field"), "id" in o) for o in outcomes] == [
        ("k", "refused", "timestamp", False),
        ("k", "accepted", None, True),
        ("j", "accepted", None, True),
        ("j", "refused", "timestamp", False),
    ]
    assert str(outcomes[0]["reason"]).startswith("in the future")
    assert (body["accepted"], body["duplicates"], body["refused"]) == (2, 0, 2)
    assert await stored(runtime, seed.tenant) == [(sub, 2, "k"), (sub, 3, "j")]


async def test_a_refused_record_stored_by_an_earlier_request_is_still_a_duplicate(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    sub = seed.subscriptions["sum"]
    first = await post(client, seed.tenant, [record(sub, "k", 2)])
    first_id = first["data"][0]["id"]  # type: ignore[index]

    body = await post(client, seed.tenant, [record(sub, "k", 1, at=NOW + timedelta(hours=1)), record(sub, "k", 2)])

    assert [(o["result"], o.get("id")) for o in body["data"]] == [  # type: ignore[attr-defined]
        ("duplicate", first_id),
        ("duplicate", first_id),
    ]


async def test_a_timestamp_finer_than_a_microsecond_is_cut_to_the_microsecond_before_it(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    """100 ns before the period's end was rounded up to its end, and refused as after it."""
    seed = await metered_tenant(client, admin_headers, runtime)
    sub, end = await _ending_soon(runtime, seed)
    last_second = stamp(end - timedelta(seconds=1))
    nanoseconds = stamp(NOW).replace("Z", ".000000999+00:00")  # as Go's RFC3339Nano writes them
    records = [
        record(sub, "late") | {"timestamp": last_second.replace("Z", ".9999999Z")},
        record(sub, "nano") | {"timestamp": nanoseconds},
    ]

    body = await post(client, seed.tenant, records)

    assert [o["result"] for o in body["data"]] == ["accepted", "accepted"]  # type: ignore[attr-defined]
    listed = (await client.get(URL, headers=seed.tenant.headers)).json()["data"]
    assert sorted(row["timestamp"] for row in listed) == sorted(
        [last_second.replace("Z", ".999999Z"), stamp(NOW)]  # cut, not rounded: .000000999 is .000000
    )


async def test_a_timestamp_to_the_microsecond_is_taken_as_sent(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    seed = await metered_tenant(client, admin_headers, runtime)
    sub, end = await _ending_soon(runtime, seed)
    last_microsecond = stamp(end - timedelta(seconds=1)).replace("Z", ".999999Z")

    body = await post(client, seed.tenant, [record(sub, "last") | {"timestamp": last_microsecond}])

    assert [o["result"] for o in body["data"]] == ["accepted"]  # type: ignore[attr-defined]
    listed = (await client.get(URL, headers=seed.tenant.headers)).json()["data"]
    assert [row["timestamp"] for row in listed] == [last_microsecond]
