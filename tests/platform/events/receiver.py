"""A webhook receiver on 127.0.0.1 for the delivery tests: records requests, answers as told."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


# Writes the whole answer itself (raw bytes on handler.wfile); returns when done or told to stop.
Answer = Callable[[BaseHTTPRequestHandler, threading.Event], None]


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    # Status codes for the next requests, in order; 204 once they run out.
    statuses: list[int] = field(default_factory=list)
    # Paths that always answer 500 (a receiver that is down), whatever `statuses` says.
    failing_paths: set[str] = field(default_factory=set)
    # Paths answered by their own function (slow or endless receivers) instead of a status.
    answers: dict[str, Answer] = field(default_factory=dict)
    # Runs in the server's thread before each ordinary answer (a test holding a request open).
    before_answer: Callable[[Received], None] | None = None
    # Set when the receiver shuts down: endless answers stop.
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Received) -> int:
        with self.lock:
            self.received.append(request)
            if request.path in self.failing_paths:
                return 500
            return self.statuses.pop(0) if self.statuses else 204


def trickled_headers(handler: BaseHTTPRequestHandler, stopping: threading.Event, *, every: float = 0.1) -> None:
    """An answer whose headers never end: one byte every ``every`` seconds."""
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        while not stopping.wait(every):
            handler.wfile.write(b"x")
            handler.wfile.flush()
    except OSError:  # the client hung up
        return


def endless_body(handler: BaseHTTPRequestHandler, stopping: threading.Event, *, chunk: int = 65536) -> None:
    """A 500 whose body never ends (throttled, so a client that reads it all cannot eat the memory)."""
    try:
        handler.wfile.write(b"HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\n\r\n")
        while not stopping.wait(0.01):
            handler.wfile.write(b"\xc3\xa9" * (chunk // 2))  # "é": the excerpt counts characters, not bytes
            handler.wfile.flush()
    except OSError:
        return


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Received(self.path, headers, body)
            custom = state.answers.get(self.path)
            if custom is not None:
                with state.lock:
                    state.received.append(request)
                custom(self, state.stopping)
                self.close_connection = True
                return
            if state.before_answer is not None:
                state.before_answer(request)
            status = state.answer(request)
            self.send_response(status)
            if status in {301, 302, 307, 308}:
                self.send_header("location", "http://127.0.0.1:9/elsewhere")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"no" if status >= 300 else b"ok")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
