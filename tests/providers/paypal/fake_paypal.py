"""A stateful fake of PayPal's REST API on a loopback port, refereed by PayPal's own specs.

It keeps tokens, products, plans, subscriptions, captures and refunds in memory, answers with
PayPal-shaped bodies and errors, replays a repeated ``PayPal-Request-Id`` on the operations whose
spec declares that header (and only there, as PayPal does; to the app that sent it first only), and
logs every request.
Each request is checked against the vendored OpenAPI documents (``spec_check.py``): a violation is
recorded (the tests' fixture fails on it) and answered 400 as PayPal would. ``/v1/oauth2/token``
is not in those documents and is modelled on PayPal's OAuth2 docs.

Test hooks: ``fail_next`` (429/5xx with Retry-After, or a delay for timeouts), ``lose_next_answer``
(the request takes effect but its answer is lost), ``approve`` (the
customer approves a subscription or a revision), ``auto_approve``, ``declining`` (captures of a
subscription are declined), ``clearing`` (captures of a subscription are ``PENDING`` until
``settle_capture``), ``refunds_clearing`` (refunds of a capture are ``PENDING`` until
``settle_refund``), ``unique_invoice_ids`` (the account blocks a refund whose ``invoice_id`` was
used before, as PayPal's "block accidental payments" setting does: ``DUPLICATE_INVOICE_ID``),
``revoke_tokens`` and ``token_expires_in``.

Webhook signatures: real PayPal signs ``transmission_id|time|webhook_id|crc32(event)`` with RSA;
the fake uses an HMAC with its own key instead (only the fake ever checks it, through
``verify-webhook-signature``, exactly as the adapter relies on PayPal to).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.providers.paypal.spec_check import SpecChecker

GOOD_SECRET = "paypal-test-secret-0123456789"
# Where a PENDING refund can go: the other values of the spec's ``refund_status`` enum.
REFUND_OUTCOMES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-fake"
AUTH_ALGO = "SHA256withRSA"
_SIGNING_KEY = secrets.token_bytes(32)  # the fake's stand-in for PayPal's private key
Json = dict[str, Any]
Reply = tuple[int, Json | None, dict[str, str]]
_CHECKER = SpecChecker.load()
# What the spec's "Update product" lists as patchable (the name is not).
_PATCHABLE_PRODUCT_FIELDS = frozenset({"description", "category", "image_url", "home_url"})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signature(transmission_id: str, transmission_time: str, webhook_id: str, event: bytes) -> str:
    message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(event)}".encode()
    # Hex, not base64: PayPal's spec requires the signature to start with a word character.
    return hmac.new(_SIGNING_KEY, message, hashlib.sha256).hexdigest()


def sign_webhook(webhook_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The headers PayPal sends with ``body``, delivered to the webhook ``webhook_id`` at ``at``."""
    transmission_id = str(uuid.uuid1())
    transmission_time = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": _signature(transmission_id, transmission_time, webhook_id, body),
        "PAYPAL-CERT-URL": CERT_URL,
        "PAYPAL-AUTH-ALGO": AUTH_ALGO,
    }


def error(status: int, name: str, message: str, *issues: str) -> Reply:
    body: Json = {"name": name, "message": message, "debug_id": secrets.token_hex(6)}
    if issues:
        body["details"] = [{"issue": issue, "description": issue.replace("_", " ").lower()} for issue in issues]
    return status, body, {}


def _not_found(what: str) -> Reply:
    return error(404, "RESOURCE_NOT_FOUND", f"The specified {what} does not exist.", "INVALID_RESOURCE_ID")


def _status_invalid() -> Reply:
    return error(
        422,
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed business validation.",
        "SUBSCRIPTION_STATUS_INVALID",
    )


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Fault:
    """Answer the next request whose path starts with ``prefix`` with ``status``, after ``delay`` s;
    with ``applied`` (and a status), only once the request has taken effect: its answer is lost."""

    prefix: str
    status: int | None
    delay: float = 0.0
    retry_after: str | None = None
    applied: bool = False


@dataclass
class FakePayPal:
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: list[Logged] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    token_apps: dict[str, str] = field(default_factory=dict)  # token -> the client id it was issued to
    token_fetches: dict[str, int] = field(default_factory=dict)
    token_expires_in: int = 32400
    products: dict[str, Json] = field(default_factory=dict)
    plans: dict[str, Json] = field(default_factory=dict)
    subscriptions: dict[str, Json] = field(default_factory=dict)
    revisions: dict[str, Json] = field(default_factory=dict)
    transactions: dict[str, Json] = field(default_factory=dict)
    refunds: dict[str, Json] = field(default_factory=dict)
    refunded_captures: dict[str, str] = field(default_factory=dict)  # refund id -> capture id
    # (app, method, path, PayPal-Request-Id) -> the first answer: a request id is its caller's, and
    # PayPal never replays one app's answer to another (each test's adapter is an app of its own).
    replies: dict[tuple[str, str, str, str], Reply] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    declining: set[str] = field(default_factory=set)
    clearing: set[str] = field(default_factory=set)
    refunds_clearing: set[str] = field(default_factory=set)
    webhooks: set[str] = field(default_factory=set)
    webhook_event_types: list[str] = field(default_factory=lambda: ["*"])  # every webhook's subscription
    empty_captures: bool = False  # answer a capture's 202 with no body, as PayPal's spec allows
    unique_invoice_ids: bool = False
    auto_approve: bool = False
    base_url: str = ""

    # -- test hooks ------------------------------------------------------------------------------

    def fail_next(self, prefix: str, status: int | None, *, delay: float = 0.0, retry_after: str | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(prefix, status, delay, retry_after))

    def lose_next_answer(self, prefix: str) -> None:
        """The next request whose path starts with ``prefix`` takes effect at PayPal, but its answer
        never reaches the caller (a gateway timeout or a dropped connection): the caller sees a 502."""
        with self.lock:
            self.faults.append(Fault(prefix, 502, applied=True))

    def settle_capture(self, capture_id: str, status: str) -> None:
        """What PayPal does when a ``PENDING`` capture clears (``COMPLETED``) or does not (``DECLINED``)."""
        with self.lock:
            self.transactions[capture_id]["status"] = status

    def settle_refund(self, refund_id: str, status: str) -> None:
        """What PayPal does with a ``PENDING`` refund: completes it, or fails or cancels it, which
        gives the capture its money back to refund again."""
        if status not in REFUND_OUTCOMES:
            raise ValueError(f"a PENDING refund cannot become {status}")
        with self.lock:
            refund = self.refunds[refund_id]
            if refund["status"] != "PENDING":
                raise ValueError(f"refund {refund_id} is {refund['status']}, not PENDING")
            refund.update(status=status, update_time=_now())
            if status == "CANCELLED":
                # PayPal's status_details explains only a PENDING or FAILED refund.
                refund.pop("status_details", None)
            if status != "COMPLETED":
                capture = self.transactions[self.refunded_captures[refund_id]]
                capture["refunded"] = str(Decimal(capture["refunded"]) - Decimal(refund["amount"]["value"]))

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def approve(self, subscription_id: str) -> None:
        """The customer approves the subscription (or its pending revision) at PayPal."""
        with self.lock:
            self._approve(subscription_id)

    def seed_active_subscription(self, *, value: str = "20.00", currency: str = "USD") -> str:
        """An ACTIVE subscription on a new flat plan, as a customer's approval leaves it."""
        cycle = {
            "frequency": {"interval_unit": "MONTH", "interval_count": 1},
            "tenure_type": "REGULAR",
            "sequence": 1,
            "total_cycles": 0,
            "pricing_scheme": {"fixed_price": {"currency_code": currency, "value": value}},
        }
        with self.lock:
            product = self._create_product({"name": "seeded", "type": "SERVICE"})[1] or {}
            plan = (
                self._create_plan({"product_id": product["id"], "name": "seeded", "billing_cycles": [cycle]})[1] or {}
            )
            sub_id = str((self._create_subscription({"plan_id": plan["id"]})[1] or {})["id"])
            self._approve(sub_id)
        return sub_id

    def bill_cycle(self, subscription_id: str, *, value: str = "30.00", currency: str = "USD") -> str:
        """PayPal bills a cycle of the subscription: a completed sale, refundable by its id like a
        capture (``POST /v2/payments/captures/{id}/refund``); its ``PAYMENT.SALE.COMPLETED`` is the
        test's to deliver."""
        sale_id = secrets.token_hex(9).upper()
        amount = {"currency_code": currency, "value": value}
        with self.lock:
            if subscription_id not in self.subscriptions:
                raise KeyError(subscription_id)
            self.transactions[sale_id] = {
                "id": sale_id,
                "status": "COMPLETED",
                "amount_with_breakdown": {"gross_amount": amount, "net_amount": amount},
                "time": _now(),
                "refunded": "0",
            }
        return sale_id

    def posts(self) -> list[Logged]:
        return [entry for entry in self.log if entry.method == "POST"]

    # -- dispatch --------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query)
        with self.lock:
            self.log.append(Logged(method, path, headers, body))
            fault = next((f for f in self.faults if path.startswith(f.prefix)), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is None:
            return self._answer(method, path, query, headers, body)
        if fault.applied:
            self._answer(method, path, query, headers, body)
        time.sleep(fault.delay)  # outside the lock: other requests go on
        if fault.status is None:
            return self._answer(method, path, query, headers, body)
        extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        status, lost, _ = error(fault.status, "INTERNAL_SERVER_ERROR", "An internal server error occurred.")
        return status, lost, extra

    def _answer(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> Reply:
        if path == "/v1/oauth2/token":
            return self._token(method, headers, body)
        problems = _CHECKER.check(method, path, query, headers, body)
        if problems:
            with self.lock:
                self.violations.extend(problems)
            return error(
                400,
                "INVALID_REQUEST",
                "Request is not well-formed, syntactically incorrect, or violates schema.",
                *["INVALID_PARAMETER_SYNTAX"] * len(problems),
            )
        # PayPal accepts the header on every call, but replays only where an operation declares it:
        # a fake replaying more would hide a retry that real PayPal refuses.
        operation = _CHECKER.find(method, path)
        replays = operation is not None and "paypal-request-id" in operation.declared("header")
        with self.lock:
            return self._authorized(method, path, headers, body, replays=replays)

    def _authorized(self, method: str, path: str, headers: dict[str, str], body: bytes, *, replays: bool) -> Reply:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, 0.0) < time.monotonic():
            return 401, {"error": "invalid_token", "error_description": "Access Token not found in cache"}, {}
        request_id = headers.get("paypal-request-id") if replays else None
        stored = (self.token_apps.get(token, ""), method, path, request_id or "")
        if request_id and stored in self.replies:
            return self.replies[stored]
        data = json.loads(body) if body else {}
        reply = self._route(method, path, data, body)
        if request_id and reply[0] < 500:  # PayPal keeps final answers, not failures
            self.replies[stored] = reply
        return reply

    def _route(self, method: str, path: str, data: Json, raw: bytes) -> Reply:  # noqa: PLR0911 - one per route
        parts = path.strip("/").split("/")
        if parts[:2] in (["v1", "catalogs"], ["v1", "billing"]) and parts[2:3] in (["products"], ["plans"]):
            return self._catalog_route(method, parts, data)
        match method, parts:
            case "POST", ["v1", "billing", "subscriptions"]:
                return self._create_subscription(data)
            case "GET", ["v1", "billing", "subscriptions", sub_id]:
                sub = self.subscriptions.get(sub_id)
                return (200, sub, {}) if sub else _not_found("subscription")
            case "POST", ["v1", "billing", "subscriptions", sub_id, action]:
                return self._subscription_action(sub_id, action, data)
            case _, ["v2", "payments", "captures" | "refunds" as kind, object_id, *action]:
                return self._payments_route(method, kind, object_id, action, data)
            case "GET", ["v1", "notifications", "webhooks", webhook_id]:
                if webhook_id not in self.webhooks:
                    return _not_found("webhook")
                url = "https://billplane.example/v1/webhooks/paypal/7"
                event_types = [{"name": name} for name in self.webhook_event_types]
                return 200, {"id": webhook_id, "url": url, "event_types": event_types}, {}
            case "POST", ["v1", "notifications", "verify-webhook-signature"]:
                return self._verify(data, raw)
        return error(404, "NOT_FOUND", "The fake does not implement this operation.")

    def _catalog_route(self, method: str, parts: list[str], data: Json) -> Reply:  # noqa: PLR0911 - one per route
        match method, parts:
            case "POST", ["v1", "catalogs", "products"]:
                return self._create_product(data)
            case "GET", ["v1", "catalogs", "products", product_id]:
                product = self.products.get(product_id)
                return (200, json.loads(json.dumps(product)), {}) if product else _not_found("product")
            case "PATCH", ["v1", "catalogs", "products", product_id]:
                return self._patch_product(product_id, data)
            case "POST", ["v1", "billing", "plans"]:
                return self._create_plan(data)
            case "GET", ["v1", "billing", "plans", plan_id]:
                plan = self.plans.get(plan_id)
                return (200, json.loads(json.dumps(plan)), {}) if plan else _not_found("plan")
            case "POST", ["v1", "billing", "plans", plan_id, "activate" | "deactivate" as action]:
                return self._plan_status(plan_id, action)
        return error(404, "NOT_FOUND", "The fake does not implement this operation.")

    # -- OAuth2 ----------------------------------------------------------------------------------

    def _token(self, method: str, headers: dict[str, str], body: bytes) -> Reply:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        client_id, _, secret = base64.b64decode(encoded or "").decode().partition(":")
        if method != "POST" or parse_qs(body.decode()).get("grant_type") != ["client_credentials"]:
            return 400, {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}, {}
        if scheme != "Basic" or not client_id or not hmac.compare_digest(secret, GOOD_SECRET):
            return 401, {"error": "invalid_client", "error_description": "Client Authentication failed"}, {}
        token = "A21AA" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_expires_in
            self.token_apps[token] = client_id
            self.token_fetches[client_id] = self.token_fetches.get(client_id, 0) + 1
        reply = {
            "scope": "https://uri.paypal.com/services/subscriptions",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-80W284485P519543T",
            "expires_in": self.token_expires_in,
            "nonce": f"{_now()}{secrets.token_hex(8)}",
        }
        return 200, reply, {}

    # -- catalog ---------------------------------------------------------------------------------

    def _create_product(self, data: Json) -> Reply:
        product = {**data, "id": "PROD-" + secrets.token_hex(8).upper(), "create_time": _now(), "update_time": _now()}
        self.products[product["id"]] = product
        return 201, product, {}

    def _patch_product(self, product_id: str, patch: Any) -> Reply:
        """What the spec says a product's PATCH takes: add, replace or remove of its description,
        category, image_url and home_url. Its name cannot change."""
        product = self.products.get(product_id)
        if product is None:
            return _not_found("product")
        changed = dict(product)
        for operation in patch:
            field = str(operation.get("path", "")).removeprefix("/")
            if field not in _PATCHABLE_PRODUCT_FIELDS:
                return error(400, "INVALID_REQUEST", "The specified field cannot be patched.", "INVALID_PATCH_PATH")
            op = operation["op"]
            # JSON Patch (RFC 6902): replace and remove need the field to be there.
            if op not in {"add", "replace", "remove"} or (op != "add" and field not in changed):
                return error(
                    400, "INVALID_REQUEST", "The patch operation is not supported.", "UNSUPPORTED_PATCH_OPERATION"
                )
            if op == "remove":
                del changed[field]
            else:
                changed[field] = operation["value"]
        self.products[product_id] = {**changed, "update_time": _now()}
        return 204, None, {}

    def _create_plan(self, data: Json) -> Reply:
        if str(data["product_id"]) not in self.products:
            return _not_found("product")
        plan = {
            "status": "ACTIVE",
            **data,
            "id": "P-" + secrets.token_hex(12).upper(),
            "create_time": _now(),
            "update_time": _now(),
        }
        self.plans[plan["id"]] = plan
        return 201, plan, {}

    def _plan_status(self, plan_id: str, action: str) -> Reply:
        """Activate (a CREATED or INACTIVE plan) or deactivate (an ACTIVE one); PLAN_STATUS_INVALID
        otherwise, as the spec says, so also for a plan already in the state asked for."""
        plan = self.plans.get(plan_id)
        if plan is None:
            return _not_found("plan")
        allowed, after = ({"CREATED", "INACTIVE"}, "ACTIVE") if action == "activate" else ({"ACTIVE"}, "INACTIVE")
        if plan["status"] not in allowed:
            reason = (
                "The requested action could not be performed, semantically incorrect, or failed business validation."
            )
            return error(422, "UNPROCESSABLE_ENTITY", reason, "PLAN_STATUS_INVALID")
        plan.update(status=after, update_time=_now())
        return 204, None, {}

    # -- subscriptions ---------------------------------------------------------------------------

    def _link(self, sub_id: str, rel: str) -> Json:
        if rel == "approve":
            token = "BA-" + secrets.token_hex(9).upper()
            href = f"https://www.sandbox.paypal.com/webapps/billing/subscriptions?ba_token={token}"
            return {"href": href, "rel": "approve", "method": "GET"}
        return {"href": f"{self.base_url}/v1/billing/subscriptions/{sub_id}", "rel": rel, "method": "GET"}

    def _create_subscription(self, data: Json) -> Reply:
        if str(data["plan_id"]) not in self.plans:
            return _not_found("plan")
        if self.plans[str(data["plan_id"])]["status"] != "ACTIVE":  # the spec's PLAN_STATUS_INVALID
            reason = "Invalid plan status for subscription creation; plan status should be active."
            return error(422, "UNPROCESSABLE_ENTITY", reason, "PLAN_STATUS_INVALID")
        sub_id = "I-" + secrets.token_hex(6).upper()
        now = _now()
        sub = {
            "id": sub_id,
            "plan_id": str(data["plan_id"]),
            "quantity": data.get("quantity", "1"),
            "custom_id": data.get("custom_id"),
            "status": "APPROVAL_PENDING",
            "status_update_time": now,
            "start_time": data.get("start_time", now),
            "create_time": now,
            "plan_overridden": False,
            "links": [self._link(sub_id, "approve"), self._link(sub_id, "edit"), self._link(sub_id, "self")],
        }
        self.subscriptions[sub_id] = sub
        reply = json.loads(json.dumps(sub))
        if self.auto_approve:
            self._approve(sub_id)
        return 201, reply, {}

    def _approve(self, sub_id: str) -> None:
        sub = self.subscriptions[sub_id]
        revision = self.revisions.pop(sub_id, None)
        if revision is not None:
            sub.update(revision)
            return
        plan = self.plans[str(sub["plan_id"])]
        cycles = plan["billing_cycles"]
        trial = next((c for c in cycles if c["tenure_type"] == "TRIAL"), None)
        first = trial or cycles[0]
        days = {"DAY": 1, "WEEK": 7, "MONTH": 30, "YEAR": 365}[first["frequency"]["interval_unit"]]
        next_billing = datetime.now(UTC) + timedelta(days=days * first["frequency"]["interval_count"])
        currency = _plan_currency(plan)
        sub.update(
            status="ACTIVE",
            status_update_time=_now(),
            links=[self._link(sub_id, "edit"), self._link(sub_id, "self")],
            billing_info={
                "outstanding_balance": {"currency_code": currency, "value": "0.00" if currency != "JPY" else "0"},
                "cycle_executions": [
                    {
                        "tenure_type": c["tenure_type"],
                        "sequence": c["sequence"],
                        "cycles_completed": 0,
                        "cycles_remaining": c.get("total_cycles", 0),
                        "total_cycles": c.get("total_cycles", 0),
                    }
                    for c in cycles
                ],
                "next_billing_time": next_billing.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "failed_payments_count": 0,
            },
        )

    def _subscription_action(self, sub_id: str, action: str, data: Json) -> Reply:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            return _not_found("subscription")
        allowed = {
            "suspend": ({"ACTIVE"}, "SUSPENDED"),
            "activate": ({"SUSPENDED"}, "ACTIVE"),
            "cancel": ({"APPROVAL_PENDING", "APPROVED", "ACTIVE", "SUSPENDED"}, "CANCELLED"),
        }
        if action in allowed:
            before, after = allowed[action]
            if sub["status"] not in before:
                return _status_invalid()
            sub.update(status=after, status_update_time=_now(), status_change_note=data["reason"])
            return 204, None, {}
        if action == "revise":
            return self._revise(sub, data)
        if action == "capture":
            return self._capture(sub, data)
        return error(404, "NOT_FOUND", "The fake does not implement this operation.")

    def _revise(self, sub: Json, data: Json) -> Reply:
        if sub["status"] != "ACTIVE":
            return _status_invalid()
        if "plan_id" in data and data["plan_id"] not in self.plans:
            return _not_found("plan")
        # PayPal asks the customer to consent: the change applies once they approve.
        change: Json = {key: data[key] for key in ("plan_id", "quantity") if key in data}
        self.revisions[sub["id"]] = change
        reply = {
            "plan_id": change.get("plan_id", sub["plan_id"]),
            "quantity": change.get("quantity", sub["quantity"]),
            "effective_time": _now(),
            "plan_overridden": False,
            "links": [self._link(sub["id"], "approve"), self._link(sub["id"], "edit")],
        }
        return 200, reply, {}

    def _capture(self, sub: Json, data: Json) -> Reply:
        if sub["status"] not in {"ACTIVE", "SUSPENDED"}:
            return _status_invalid()
        amount = data["amount"]
        transaction: Json = {
            "id": secrets.token_hex(9).upper(),
            "status": "DECLINED"
            if sub["id"] in self.declining
            else "PENDING"
            if sub["id"] in self.clearing
            else "COMPLETED",
            "amount_with_breakdown": {"gross_amount": amount, "net_amount": amount},
            "time": _now(),
            "refunded": "0",
        }
        self.transactions[transaction["id"]] = transaction
        return 202, None if self.empty_captures else transaction, {}

    def _payments_route(self, method: str, kind: str, object_id: str, action: list[str], data: Json) -> Reply:
        if (method, kind, action) == ("POST", "captures", ["refund"]):
            return self._refund(object_id, data)
        if (method, kind, action) == ("GET", "captures", []):
            return self._show_capture(object_id)
        if (method, kind, action) == ("GET", "refunds", []):
            return self._show_refund(object_id)
        return error(404, "NOT_FOUND", "The fake does not implement this operation.")

    def _show_capture(self, capture_id: str) -> Reply:
        capture = self.transactions.get(capture_id)
        if capture is None:
            return _not_found("capture")
        shown: Json = {
            "id": capture_id,
            "status": capture["status"],
            "amount": capture["amount_with_breakdown"]["gross_amount"],
            "final_capture": True,
            "create_time": capture["time"],
            "update_time": _now(),
        }
        return 200, shown, {}

    # -- refunds ---------------------------------------------------------------------------------

    def _refund(self, capture_id: str, data: Json) -> Reply:
        capture = self.transactions.get(capture_id)
        if capture is None:
            return _not_found("capture")
        gross = capture["amount_with_breakdown"]["gross_amount"]
        if capture["status"] != "COMPLETED":
            return error(422, "UNPROCESSABLE_ENTITY", "The capture cannot be refunded.", "CAPTURE_FULLY_REFUNDED")
        amount = data.get("amount") or {"currency_code": gross["currency_code"], "value": gross["value"]}
        used = {old.get("invoice_id") for old in self.refunds.values()}
        if self.unique_invoice_ids and "invoice_id" in data and data["invoice_id"] in used:
            reason = "Invoice ID was previously used to refund a capture."
            return error(422, "UNPROCESSABLE_ENTITY", reason, "DUPLICATE_INVOICE_ID")
        left = Decimal(gross["value"]) - Decimal(capture["refunded"])
        if amount["currency_code"] != gross["currency_code"] or Decimal(amount["value"]) > left:
            return error(422, "UNPROCESSABLE_ENTITY", "The refund amount is too large.", "REFUND_AMOUNT_EXCEEDED")
        capture["refunded"] = str(Decimal(capture["refunded"]) + Decimal(amount["value"]))
        refund_id = secrets.token_hex(9).upper()
        refund: Json = {
            "id": refund_id,
            "status": "COMPLETED",
            "amount": amount,
            **{key: data[key] for key in ("invoice_id", "custom_id", "note_to_payer") if key in data},
            "create_time": _now(),
            "update_time": _now(),
            "links": [
                {"href": f"{self.base_url}/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
                {"href": f"{self.base_url}/v2/payments/captures/{capture_id}", "rel": "up", "method": "GET"},
            ],
        }
        if capture_id in self.refunds_clearing:
            # ECHECK is the one reason PayPal's spec gives for a PENDING (or FAILED) refund.
            refund.update(status="PENDING", status_details={"reason": "ECHECK"})
        self.refunds[refund_id] = refund
        self.refunded_captures[refund_id] = capture_id
        return 201, json.loads(json.dumps(refund)), {}

    def _show_refund(self, refund_id: str) -> Reply:
        refund = self.refunds.get(refund_id)
        # A copy: the handler writes it out after the lock is released, and settle_refund may run.
        return (200, json.loads(json.dumps(refund)), {}) if refund else _not_found("refund")

    # -- webhooks --------------------------------------------------------------------------------

    def _verify(self, data: Json, raw: bytes) -> Reply:
        # PayPal checks the CRC32 of the event as it was sent: take its bytes, not a re-encoding.
        _, marker, rest = raw.partition(b'"webhook_event":')
        event = rest[:-1] if marker and rest.endswith(b"}") else json.dumps(data["webhook_event"]).encode()
        expected = _signature(data["transmission_id"], data["transmission_time"], data["webhook_id"], event)
        genuine = (
            data["cert_url"] == CERT_URL
            and data["auth_algo"] == AUTH_ALGO
            and hmac.compare_digest(expected, data["transmission_sig"])
        )
        return 200, {"verification_status": "SUCCESS" if genuine else "FAILURE"}, {}


def _plan_currency(plan: Json) -> str:
    scheme = next(c for c in plan["billing_cycles"] if c["tenure_type"] == "REGULAR")["pricing_scheme"]
    money = scheme.get("fixed_price") or scheme["tiers"][0]["amount"]
    return str(money["currency_code"])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: the tests that call with 20 clients at once had
    # connections reset (httpx ReadError) whenever the accept thread fell behind on a busy machine.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (the timeout tests) closes its end before the answer: expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def serve(fake: FakePayPal) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, reply, extra = fake.handle(self.command, self.path, headers, body)
            data = json.dumps(reply).encode() if reply is not None else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer  # noqa: N815 - the stdlib's names

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server
