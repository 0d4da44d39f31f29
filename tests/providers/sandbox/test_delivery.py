"""The sandbox POSTs the later outcome of a pending payment to billplane, tested on a loopback server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from billplane_sandbox import delivery, events, payment_methods

from billplane.plugins import ChargeRequest
from tests.providers.sandbox.conftest import WEBHOOK_SECRET, MakeAdapter


@dataclass
class Receiver:
    """A stand-in for billplane's inbound webhook endpoint: records requests, answers from a script."""

    url: str = ""
    answers: list[int] = field(default_factory=list)  # status codes to answer, then 204
    requests: list[tuple[str, dict[str, str], bytes, float]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()))
            self.send_response(state.answers.pop(0) if state.answers else 204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _charge(token: str, amount: int = 1500) -> ChargeRequest:
    return ChargeRequest(payment_id=9, amount=amount, currency="EUR", payment_method=token)


@pytest.mark.parametrize(
    ("token", "status", "failure_code"),
    [(payment_methods.PENDING_SUCCEEDS, "succeeded", None), (payment_methods.PENDING_FAILS, "failed", "debit_failed")],
)
async def test_a_pending_payment_settles_by_a_signed_webhook(
    make_adapter: MakeAdapter, receiver: Receiver, token: str, status: str, failure_code: str | None
) -> None:
    adapter = make_adapter(account_id=12, options={"webhook_url": receiver.url, "pending_delay_seconds": "0"})
    pending = await adapter.charge(_charge(token), idempotency_key="outbox-1")
    assert pending.status == "pending"
    await delivery.wait_for_deliveries()

    [(path, headers, body, _)] = receiver.requests
    assert path == "/v1/webhooks/sandbox/12"
    assert headers["content-type"] == "application/json"
    [event] = await adapter.parse_webhook(headers, body)  # signed with the account's webhook secret
    assert event.type == f"payment.{status}"
    assert event.provider_object_id == pending.provider_payment_id
    assert event.payment is not None
    assert (event.payment.status, event.payment.failure_code) == (status, failure_code)

    await adapter.charge(_charge(token), idempotency_key="outbox-1")  # a retried charge
    await delivery.wait_for_deliveries()
    assert receiver.requests[1][1]["webhook-id"] == headers["webhook-id"]  # billplane stores the event once


async def test_the_url_may_name_the_account_and_the_delay_holds(make_adapter: MakeAdapter, receiver: Receiver) -> None:
    options = {"webhook_url": receiver.url + "/hooks/{account_id}/in", "pending_delay_seconds": "0.2"}
    started = time.monotonic()
    await make_adapter(account_id=3, options=options).charge(
        _charge(payment_methods.PENDING_SUCCEEDS), idempotency_key="k"
    )
    await delivery.wait_for_deliveries()
    [(path, _, _, received)] = receiver.requests
    assert path == "/hooks/3/in"
    assert received - started >= 0.2


async def test_without_a_webhook_url_nothing_is_sent(make_adapter: MakeAdapter, receiver: Receiver) -> None:
    for options in ({"pending_delay_seconds": "0"}, {"pending_delay_seconds": "0", "webhook_url": receiver.url}):
        secret = WEBHOOK_SECRET if "webhook_url" not in options else None  # a URL but no secret: nothing to sign
        adapter = make_adapter(options=options, webhook_secret=secret)
        await adapter.charge(_charge(payment_methods.PENDING_SUCCEEDS), idempotency_key="k")
        await adapter.charge(_charge(payment_methods.SUCCEEDS), idempotency_key="k")
    await delivery.wait_for_deliveries()
    assert receiver.requests == []
    # The same receiver does get a webhook once both are set, so the empty list above means something.
    configured = make_adapter(options={"pending_delay_seconds": "0", "webhook_url": receiver.url})
    await configured.charge(_charge(payment_methods.PENDING_SUCCEEDS), idempotency_key="k")
    await delivery.wait_for_deliveries()
    assert len(receiver.requests) == 1


async def test_delivery_retries_server_errors_only(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    webhook = events.sign(events.payment_succeeded("sbx_pay_1"), WEBHOOK_SECRET)
    receiver.answers = [503, 429]
    assert await delivery.deliver(receiver.url, webhook, retry_delay=0.01)
    assert len(receiver.requests) == 3
    assert all(request[2] == webhook.body for request in receiver.requests)

    receiver.answers = [400]
    with caplog.at_level(logging.WARNING, logger="billplane_sandbox"):
        assert not await delivery.deliver(receiver.url, webhook, retry_delay=0.01)
    assert len(receiver.requests) == 4  # a 4xx is final
    assert f"{webhook.headers['webhook-id']} was not delivered" in caplog.text
    assert WEBHOOK_SECRET not in caplog.text

    receiver.answers = [500, 500, 500]
    assert not await delivery.deliver(receiver.url, webhook, retry_delay=0.01)
    assert len(receiver.requests) == 7


async def test_an_unreachable_receiver_is_given_up(caplog: pytest.LogCaptureFixture) -> None:
    webhook = events.sign(events.payment_succeeded("sbx_pay_1"), WEBHOOK_SECRET)
    with caplog.at_level(logging.WARNING, logger="billplane_sandbox"):
        assert not await delivery.deliver("http://127.0.0.1:9/", webhook, retry_delay=0.01)
    assert "ConnectError" in caplog.text


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_delay_option_is_refused(make_adapter: MakeAdapter, value: str) -> None:
    with pytest.raises(ValueError, match="PENDING_DELAY_SECONDS"):
        make_adapter(options={"pending_delay_seconds": value})
