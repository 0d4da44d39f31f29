"""The provider's answer to a subscription's creation never undoes what billplane did meanwhile.

The create call runs in the worker, possibly long after the subscription was created (retries, a
customer still being created at the provider). Dunning or a billing run may have moved the
subscription on by then; a late answer saying "active, first period" must not take it back.
"""

from __future__ import annotations

from billplane_sandbox.payment_methods import SUCCEEDS

from billplane.runtime import Runtime
from tests.platform.dunning.helpers import Client, execute, one, sandbox_customer, subscribe
from tests.platform.sync_fakes import FAST, drain


async def test_a_late_creation_answer_keeps_past_due_and_the_current_period(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    worker.sync_options = FAST  # the create call waits for the customer's: retry it at once
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "late")
    subscription = await subscribe(client, setup)
    # What dunning and a billing run would have done before the worker got to the create call.
    await execute(
        worker,
        setup.tenant,
        "UPDATE subscriptions SET status = 'past_due', current_period_start = current_period_end,"
        " current_period_end = current_period_end + interval '1 month' WHERE id = :id",
        id=subscription,
    )
    before = await one(
        worker, setup.tenant, "SELECT current_period_start FROM subscriptions WHERE id = :id", id=subscription
    )

    await drain(worker)

    after = await one(
        worker,
        setup.tenant,
        "SELECT status, current_period_start, provider_subscription_id FROM subscriptions WHERE id = :id",
        id=subscription,
    )
    assert after["provider_subscription_id"] is not None  # the create call did run and was recorded
    assert (after["status"], after["current_period_start"]) == ("past_due", before["current_period_start"])


async def test_an_untouched_subscription_takes_the_answer(
    client: Client, admin_headers: dict[str, str], worker: Runtime
) -> None:
    worker.sync_options = FAST
    setup = await sandbox_customer(client, admin_headers, worker, SUCCEEDS, "late")
    subscription = await subscribe(client, setup, trial_days=0)
    await drain(worker)
    after = await one(
        worker,
        setup.tenant,
        "SELECT status, provider_subscription_id FROM subscriptions WHERE id = :id",
        id=subscription,
    )
    assert after["provider_subscription_id"] is not None
    assert after["status"] == "active"
