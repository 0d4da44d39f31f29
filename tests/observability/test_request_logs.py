"""One JSON access line per request with its id, tenant, route template, method, status and duration."""

from __future__ import annotations

import io
import json
import logging

from litestar import Litestar
from litestar.testing import AsyncTestClient

from billplane.observability.logs import configure_logging
from tests.conftest import create_tenant
from tests.observability.conftest import JsonLog
from tests.platform.provider_accounts_fake import FakeProvider, good_body

Client = AsyncTestClient[Litestar]


def access_lines(log: JsonLog) -> list[dict[str, object]]:
    return [line for line in log.lines() if line["logger"] == "billplane.access"]


async def test_every_request_has_one_access_line_with_its_context(
    client: Client, admin_headers: dict[str, str], json_log: JsonLog
) -> None:
    tenant = await create_tenant(client, admin_headers, "logs")
    created = await client.post("/v1/customers", json={"name": "Ada"}, headers=tenant.headers)
    customer_id = created.json()["id"]
    before = len(access_lines(json_log))

    response = await client.get(f"/v1/customers/{customer_id}", headers=tenant.headers)

    assert response.status_code == 200
    [line] = access_lines(json_log)[before:]
    assert set(line) >= {"timestamp", "level", "logger", "message", "request_id", "duration_ms"}
    assert line["route"] == "/v1/customers/{customer_id}"  # the template, not the path
    assert (line["method"], line["status"], line["tenant"], line["level"]) == ("GET", 200, tenant.slug, "INFO")
    assert line["request_id"] == response.headers["x-request-id"]
    assert len(str(line["request_id"])) == 32
    assert isinstance(line["duration_ms"], float)
    assert str(line["timestamp"]).endswith("Z")
    assert line["message"] == "GET /v1/customers/{customer_id} 200"


async def test_a_sane_incoming_request_id_is_kept_and_an_insane_one_replaced(
    client: Client, admin_headers: dict[str, str], json_log: JsonLog
) -> None:
    kept = await client.get("/v1/admin/tenants", headers=admin_headers | {"X-Request-Id": "lb-7f3a.42:x_1"})
    assert kept.headers["x-request-id"] == "lb-7f3a.42:x_1"
    injected = await client.get("/v1/admin/tenants", headers=admin_headers | {"X-Request-Id": 'x" level=ERROR'})
    replaced = injected.headers["x-request-id"]
    assert replaced != 'x" level=ERROR'
    assert len(replaced) == 32
    ids = [line["request_id"] for line in access_lines(json_log)]
    assert ids[-2:] == ["lb-7f3a.42:x_1", replaced]
    assert "tenant" not in access_lines(json_log)[-1]  # the operator is no tenant


async def test_unmatched_and_refused_requests_are_logged_too(client: Client, json_log: JsonLog) -> None:
    assert (await client.get("/no/such/path/12345")).status_code == 404
    assert (await client.get("/v1/tenant", headers={"Authorization": "Bearer bpk_unknown"})).status_code == 401
    lines = access_lines(json_log)[-2:]
    assert [(line["route"], line["status"]) for line in lines] == [("_unmatched", 404), ("/v1/tenant", 401)]


async def test_lines_logged_inside_a_request_carry_its_context(
    app: Litestar, client: Client, admin_headers: dict[str, str], json_log: JsonLog
) -> None:
    tenant = await create_tenant(client, admin_headers, "logs")
    FakeProvider(broken=True).install(app)  # its credentials check raises: billplane logs an error
    response = await client.post("/v1/provider-accounts", json=good_body(), headers=tenant.headers)
    assert response.status_code == 422, response.text
    request_id = response.headers["x-request-id"]
    lines = [line for line in json_log.lines() if line.get("request_id") == request_id]
    [error] = [line for line in lines if line["level"] == "ERROR"]
    assert error["message"] == "the fake provider's credentials check raised RuntimeError"
    assert (error["tenant"], error["route"], error["method"]) == (tenant.slug, "/v1/provider-accounts", "POST")
    assert [line["logger"] for line in lines][-1] == "billplane.access"


async def test_health_and_metrics_access_lines_go_at_debug(client: Client, json_log: JsonLog) -> None:
    await client.get("/health")
    [line] = access_lines(json_log)[-1:]
    assert (line["route"], line["level"]) == ("/health", "DEBUG")


def test_text_format_and_level_are_configurable() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    previous_level, previous_handlers = root.level, list(root.handlers)
    try:
        handler = configure_logging("WARNING", "text", stream)
        logging.getLogger("billplane.test").info("not shown")
        logging.getLogger("billplane.test").warning("shown with key %s", "bpk_AbCdEfGh" + "q" * 35)
        again = configure_logging("INFO", "json", stream)  # replaces its own handler, not others
        assert handler not in root.handlers
        assert again in root.handlers
        logging.getLogger("billplane.test").info("as json")
    finally:
        for added in set(root.handlers) - set(previous_handlers):
            root.removeHandler(added)
        root.setLevel(previous_level)
    text_line, json_line = stream.getvalue().splitlines()
    assert "WARNING billplane.test: shown with key bpk_AbCdEfGh[redacted]" in text_line
    assert "not shown" not in stream.getvalue()
    assert json.loads(json_line)["message"] == "as json"
