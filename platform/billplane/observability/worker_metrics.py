"""`billplane worker`'s own metrics endpoint: its job outcomes live in its process, not the API's."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from billplane.observability.metrics import exposition

logger = logging.getLogger("billplane.metrics")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        body = exposition()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("worker metrics: %s", format % args)


def serve_worker_metrics(port: int, host: str) -> ThreadingHTTPServer:
    """Serve GET /metrics on ``host:port`` from a daemon thread (scrapes never wait for jobs)."""
    server = ThreadingHTTPServer((host, port), _Handler)
    threading.Thread(target=server.serve_forever, name="billplane-worker-metrics", daemon=True).start()
    logger.info("worker metrics on http://%s:%d/metrics", host, server.server_address[1])
    return server
