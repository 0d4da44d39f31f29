"""The fake Stripe over HTTP on 127.0.0.1: checks, records and answers every request."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import sdk_params
from .errors import StripeFailure, invalid
from .forms import unflatten
from .objects import new_id
from .resources import ROUTES, Store
from .spec import Spec, stripe_spec


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    template: str | None
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    idempotency_key: str | None
    status: int = 0

    @property
    def params(self) -> dict[str, Any]:
        return unflatten(self.form or self.query)

    @property
    def keys(self) -> set[str]:
        return {key for key, _ in self.form}


@dataclass
class Fault:
    status: int | None  # None: answer normally, only late
    delay: float = 0.0
    retry_after: str | None = None
    path: str | None = None
    times: int = 1
    skip: int = 0  # matching requests answered normally before this fault applies


@dataclass
class FakeStripe:
    """State, checks and test hooks; ``url`` once served."""

    api_keys: set[str] = field(default_factory=set)
    spec: Spec = field(default_factory=stripe_spec)
    store: Store = field(default_factory=Store)
    requests: list[Recorded] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    url: str = ""
    # Bumped by reset(): a request still being answered for an earlier test (one delayed past its
    # client's timeout) must not write into the next test's store.
    generation: int = 0
    _idempotent: dict[tuple[str, str], tuple[str, int, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.generation += 1
            self.store = Store()
            self.requests.clear()
            self.violations.clear()
            self.faults.clear()
            self._idempotent.clear()

    # -- test hooks ------------------------------------------------------------------------

    def fail_next(
        self, status: int, *, retry_after: str | None = None, path: str | None = None, times: int = 1, skip: int = 0
    ) -> None:
        """Answer the next matching request(s) with ``status``; ``skip`` lets that many through first
        (the second page of a list, say)."""
        self.faults.append(Fault(status=status, retry_after=retry_after, path=path, times=times, skip=skip))

    def delay_next(self, seconds: float, *, path: str | None = None) -> None:
        self.faults.append(Fault(status=None, delay=seconds, path=path))

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def last(self, method: str, template: str) -> Recorded:
        return next(r for r in reversed(self.requests) if r.method == method and r.template == template)

    # -- answering -------------------------------------------------------------------------

    def _fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path is None or path.startswith(fault.path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _check(self, method: str, path: str, query: list[tuple[str, str]], form: list[tuple[str, str]]) -> list[str]:
        declared = sdk_params.OPERATIONS.get((method, path))
        if declared is not None:
            return sdk_params.check(declared, method, path, form or query)
        op = self.spec.operation(method, path)
        addition = sdk_params.ADDITIONS.get((method, op.template)) if op else None
        spec_form = form
        problems: list[str] = []
        if addition is not None:
            declared_type, keys = addition
            newer = [(key, value) for key, value in form if key in keys]
            problems += sdk_params.check(declared_type, method, path, newer)
            spec_form = [(key, value) for key, value in form if key not in keys]
        return problems + self.spec.check(method, path, query, spec_form)

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        path = split.path
        query = parse_qsl(split.query, keep_blank_values=True)
        form = parse_qsl(body.decode(), keep_blank_values=True) if body else []
        key = headers.get("idempotency-key")
        op = self.spec.operation(method, path)
        template = op.template if op else None
        if template is None and (method, path) in sdk_params.OPERATIONS:
            template = path
        status, extra, payload = self._answer(
            method=method, path=path, template=template, query=query, form=form, headers=headers, key=key
        )
        with self._lock:
            self.requests.append(Recorded(method, path, template, query, form, key, status))
        return status, extra, payload

    def _answer(
        self,
        *,
        method: str,
        path: str,
        template: str | None,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
        headers: dict[str, str],
        key: str | None,
    ) -> tuple[int, dict[str, str], bytes]:
        generation = self.generation
        problems = self._check(method, path, query, form)
        if method == "POST" and form and "x-www-form-urlencoded" not in headers.get("content-type", ""):
            problems.append(f"{method} {path}: body is not form-encoded")
        if problems:
            with self._lock:
                self.violations.extend(problems)
            return _error(invalid("; ".join(problems), code="parameter_unknown"))
        api_key = headers.get("authorization", "").removeprefix("Bearer ")
        if api_key not in self.api_keys:
            masked = f"{api_key[:8]}{'*' * max(len(api_key) - 12, 0)}{api_key[-4:]}"
            return _error(StripeFailure(401, "invalid_request_error", f"Invalid API Key provided: {masked}"))
        fault = self._fault(path)
        injected = None if fault is None else self._injected(fault, generation)
        if injected is not None:
            return injected
        fingerprint = hashlib.sha256(repr((method, path, sorted(form))).encode()).hexdigest()
        if method == "POST" and key:
            with self._lock:
                saved = self._idempotent.get((api_key, key))
            if saved is not None:
                if saved[0] != fingerprint:
                    return _error(
                        StripeFailure(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were first "
                            "used with.",
                        )
                    )
                return saved[1], {"Idempotent-Replayed": "true"}, saved[2]
        status, extra, payload = self._handle(method, template, path, form or query)
        if method == "POST" and key:
            with self._lock:
                self._idempotent[(api_key, key)] = (fingerprint, status, payload)
        return status, extra, payload

    def _injected(self, fault: Fault, generation: int) -> tuple[int, dict[str, str], bytes] | None:
        """The fault's delay, then its answer (None: go on answering normally)."""
        time.sleep(fault.delay)
        if self.generation != generation:
            return _error(StripeFailure(503, "api_error", "the test that sent this request has ended"))
        if fault.status is None:
            return None
        extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        kind = "rate_limit_error" if fault.status == 429 else "api_error"
        code = "rate_limit" if fault.status == 429 else None
        failure = StripeFailure(fault.status, kind, f"Injected {fault.status}", **({"code": code} if code else {}))
        status, headers_out, payload = _error(failure)
        return status, {**headers_out, **extra}, payload

    def _handle(
        self, method: str, template: str | None, path: str, pairs: list[tuple[str, str]]
    ) -> tuple[int, dict[str, str], bytes]:
        handler = ROUTES.get((method, template or ""))
        if handler is None or template is None:
            message = f"the fake Stripe does not implement {method} {template or path}"
            with self._lock:
                self.violations.append(message)
            return _error(invalid(message))
        names = re.findall(r"\{([^}]+)\}", template)
        pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template))
        match = re.fullmatch(pattern, path)
        values = dict(zip(names, match.groups(), strict=True)) if match else {}
        try:
            with self._lock:
                obj = handler(self.store, values, unflatten(pairs))
                payload = json.dumps(obj).encode()
        except StripeFailure as failure:
            return _error(failure)
        except Exception as error:  # a bug in the fake must fail the test, not hang up on the client
            with self._lock:
                self.violations.append(f"the fake Stripe failed on {method} {path}: {error!r}")
            return _error(StripeFailure(500, "api_error", "the fake Stripe failed"))
        return 200, {}, payload


def _error(failure: StripeFailure) -> tuple[int, dict[str, str], bytes]:
    return failure.status, {}, json.dumps(failure.body).encode()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, extra, payload = self.fake.answer(self.command, self.path, headers, body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", new_id("req"))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out first, as a test asked for

    do_GET = do_POST = do_DELETE = _serve  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        del format, args  # quiet: the request log is self.fake.requests


class FakeStripeServer:
    """Serves a ``FakeStripe`` on an ephemeral port of 127.0.0.1 from a daemon thread."""

    def __init__(self, fake: FakeStripe) -> None:
        handler = type("Handler", (_Handler,), {"fake": fake})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-stripe", daemon=True)
        host, port = self._server.server_address[:2]
        fake.url = f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
