"""`billplane run --workers 2`: numbers from both server processes add up on any scrape, logs are JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, SECRET_KEY
from tests.observability.conftest import parse, value

REQUESTS = 24


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a new connection each time
        return response.status, response.read().decode()


def _wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # spawned processes import the app afresh; slow on a busy machine
    while time.monotonic() < deadline:
        assert process.poll() is None, "billplane run exited early"
        try:
            if _get(f"{base}/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("billplane run did not answer within 120 s")


@pytest.mark.timeout(300)  # two fresh interpreters import the app: about 5 s idle, a minute on a busy machine
def test_two_server_processes_share_their_metrics_and_log_json(database_url: str, tmp_path: Path) -> None:
    port, metrics_dir = _free_port(), tmp_path / "metrics"
    env = {
        **os.environ,
        "BILLPLANE_DATABASE_URL": database_url,
        "BILLPLANE_SECRET_KEY": SECRET_KEY,
        "BILLPLANE_ADMIN_KEY": ADMIN_KEY,
        "BILLPLANE_METRICS_DIR": str(metrics_dir),
        "BILLPLANE_LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-c", "from billplane.cli.main import cli; cli()", "run", "--workers", "2"]
    command += ["--no-worker", "--port", str(port)]
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as sink:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=sink)  # noqa: S603
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base, process)
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            for _ in range(REQUESTS):  # a new connection each: both processes take some
                assert _get(f"{base}/v1/admin/tenants?limit=1", admin)[0] == 200
            counts = set()
            for _ in range(6):  # whichever process answers the scrape sees both processes' numbers
                samples = parse(_get(f"{base}/metrics", admin)[1])
                counts.add(
                    value(
                        samples,
                        "billplane_http_request_duration_seconds_count",
                        route="/v1/admin/tenants",
                        method="GET",
                        status="200",
                    )
                )
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert counts == {REQUESTS}
    pids = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("*.db")}
    assert len(pids) >= 2, pids  # both server processes wrote their own files
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "billplane.access"]
    assert len([line for line in access if line["route"] == "/v1/admin/tenants"]) == REQUESTS
    assert all(len(line["request_id"]) == 32 for line in access)
    assert ADMIN_KEY not in stderr.read_text()
    assert SECRET_KEY not in stderr.read_text()
