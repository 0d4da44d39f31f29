"""A fake of Example Pay's API on a loopback port: just enough of it for the adapter and the kit.

It keeps its objects in memory and honours ``Idempotency-Key`` like the real API: the same key
returns the first response.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

GOOD_TOKEN = "ex_test_good"
CHARGE_OUTCOMES = {
    "tok_visa": {"status": "succeeded"},
    "tok_declined": {"status": "failed", "failure_code": "card_declined", "failure_message": "Declined."},
}


class FakeExamplePay:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.replies: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/v1/account":
            return 200, {"id": "acct_1"}
        kind, _, object_id = path.removeprefix("/v1/").partition("/")
        if method == "DELETE":
            found = self.objects.pop(object_id, None)
            return (200, {"deleted": True}) if found else (404, _error("not_found", "no such customer"))
        if object_id:  # an update
            if object_id not in self.objects:
                return 404, _error("not_found", f"no such {kind}")
            self.objects[object_id].update(body)
            return 200, self.objects[object_id]
        created = {"id": f"{kind[:3]}_{secrets.token_hex(6)}", **body, **self._outcome(kind, body)}
        if "error" in created:
            return 400, {"error": created["error"]}
        self.objects[created["id"]] = created
        return 200, created

    def _outcome(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind == "charges":
            return CHARGE_OUTCOMES.get(body["source"], _error("invalid_source", "unknown payment source"))
        if kind == "refunds":
            charge = self.objects.get(body["charge"])
            if charge is None or charge["status"] != "succeeded" or body["amount"] > charge["amount"]:
                return _error("invalid_refund", "that charge cannot be refunded by that amount")
            return {"status": "succeeded"}
        return {}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@pytest.fixture(scope="session")
def fake_example_pay() -> Iterator[str]:
    """The base URL of a running fake; its state lives for the whole session."""
    fake = FakeExamplePay()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"null") or {}
            if self.headers.get("authorization") != f"Bearer {GOOD_TOKEN}":
                status, reply = 401, _error("unauthorized", "bad API token")
            else:
                key = self.headers.get("idempotency-key")
                with fake.lock:
                    if key is not None and (self.path, key) in fake.replies:
                        status, reply = fake.replies[self.path, key]
                    else:
                        status, reply = fake.handle(self.command, self.path, body)
                        if key is not None:
                            fake.replies[self.path, key] = (status, reply)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_DELETE(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
