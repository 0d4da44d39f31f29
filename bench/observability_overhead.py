"""Per-request cost of billplane's observability layer (ObservedApp), in process, without a network.

The same minimal ASGI app is called directly, bare and wrapped, interleaved in rounds so machine
load hits both alike. Wrapped runs cover: access log disabled at its level (the default for
/health), enabled into a JSON handler writing to /dev/null, and a request with a tenant label.
The difference per call is what the layer adds to every request, network and database aside.

    uv run python bench/observability_overhead.py --calls 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from typing import Any

from billplane.observability.formatters import JsonFormatter
from billplane.observability.metrics import RequestMetrics
from billplane.observability.middleware import ObservedApp
from billplane.observability.records import install_record_factory


class _Principal:
    slug = "acme"


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    del receive
    scope["path_template"] = "/v1/customers/{customer_id}"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: Any) -> None:
    del message


async def _receive() -> Any:
    return {"type": "http.request", "body": b""}


def _scope(*, tenant: bool) -> dict[str, Any]:
    state = {"billplane_principal": _Principal()} if tenant else {}
    return {"type": "http", "method": "GET", "path": "/v1/customers/1", "headers": [], "state": state}


async def _per_call_us(app: Any, calls: int, *, tenant: bool) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await app(_scope(tenant=tenant), _receive, _send)
    return (time.perf_counter() - started) / calls * 1e6


async def main(calls: int, rounds: int) -> None:
    install_record_factory()
    access = logging.getLogger("billplane.access")
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: PTH123, SIM115, ASYNC230 - set-up, lives for the run
    handler.setFormatter(JsonFormatter())
    access.addHandler(handler)
    access.propagate = False
    wrapped = ObservedApp(_inner, RequestMetrics(tenant_labels=100))
    results: dict[str, list[float]] = {"bare": [], "log off": [], "log on (JSON)": [], "log on + tenant": []}
    for _ in range(rounds):
        results["bare"].append(await _per_call_us(_inner, calls, tenant=False))
        access.setLevel(logging.WARNING)
        results["log off"].append(await _per_call_us(wrapped, calls, tenant=False))
        access.setLevel(logging.INFO)
        results["log on (JSON)"].append(await _per_call_us(wrapped, calls, tenant=False))
        results["log on + tenant"].append(await _per_call_us(wrapped, calls, tenant=True))
    print(f"load average: {os.getloadavg()[0]:.1f}; {calls} calls x {rounds} rounds; median microseconds per call")
    bare = statistics.median(results["bare"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:<18} {median:7.2f} us   (+{median - bare:.2f} us over bare)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.rounds))
