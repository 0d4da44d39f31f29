"""/v1/refunds reads: one refund, and the list with each of its filters (rows written with SQL)."""

from __future__ import annotations

from billplane.runtime import Runtime
from tests.conftest import create_tenant
from tests.platform.billing_seed import Client, insert, list_ids, payment


async def test_a_refund_and_every_refund_filter(
    client: Client, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    tenant = await create_tenant(client, admin_headers, "refreads")
    async with runtime.database.tenant_session(tenant.schema) as session:
        ada = await insert(session, "customers", name="Ada")
        first = await payment(session, ada, "succeeded", 1000, refunded_amount=500)
        second = await payment(session, ada, "succeeded", 1000, refunded_amount=300)
        done = await insert(
            session, "refunds", payment_id=first, amount=200, currency="USD", status="succeeded",
            provider_refund_id="re_done",
        )  # fmt: skip
        waiting = await insert(
            session, "refunds", payment_id=first, amount=300, currency="USD", status="pending",
            action_required="billplane could not confirm this refund",
        )  # fmt: skip
        failed = await insert(
            session, "refunds", payment_id=second, amount=300, currency="USD", status="failed",
            failure_code="resolved_by_tenant", failure_message="none was made",
        )  # fmt: skip
        held = await insert(session, "refunds", payment_id=second, amount=300, currency="USD", status="pending")

    one = await client.get(f"/v1/refunds/{waiting}", headers=tenant.headers)
    assert one.status_code == 200, one.text
    shown = one.json()
    assert (shown["payment_id"], shown["amount"], shown["status"]) == (first, 300, "pending")
    assert shown["action_required"] == "billplane could not confirm this refund"
    shown = (await client.get(f"/v1/refunds/{failed}", headers=tenant.headers)).json()
    assert (shown["failure_code"], shown["failure_message"]) == ("resolved_by_tenant", "none was made")
    for missing in (held + 1000, 9223372036854775808):  # no such refund; no BIGINT holds the second
        assert (await client.get(f"/v1/refunds/{missing}", headers=tenant.headers)).status_code == 404

    assert await list_ids(client, tenant, "refunds") == [done, waiting, failed, held]  # oldest first
    assert await list_ids(client, tenant, "refunds", payment_id=second) == [failed, held]
    assert await list_ids(client, tenant, "refunds", status="pending") == [waiting, held]
    assert await list_ids(client, tenant, "refunds", action_required="true") == [waiting]
    assert await list_ids(client, tenant, "refunds", action_required="false") == [done, failed, held]
    page = (await client.get("/v1/refunds?limit=3", headers=tenant.headers)).json()
    rest = (await client.get(f"/v1/refunds?limit=3&cursor={page['next_cursor']}", headers=tenant.headers)).json()
    assert [refund["id"] for refund in page["data"] + rest["data"]] == [done, waiting, failed, held]
    assert rest["next_cursor"] is None

    for query, field in (("status=lost", "status"), ("action_required=maybe", "action_required")):
        refused = await client.get(f"/v1/refunds?{query}", headers=tenant.headers)
        assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, field), refused.text
