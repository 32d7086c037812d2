"""Shared pytest fixtures: fixture paths and local HTTP servers (file server, receivers)."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
sys.path.insert(0, str(TESTS))


class Recorder:
    """What a local receiver got: method, path, headers, body; optionally scripted replies."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.event = threading.Condition(self.lock)
        self.statuses: list[int] = []  # popped per request; default 200
        self.files: dict[str, bytes] = {}

    def record(self, entry: dict[str, Any]) -> int:
        with self.lock:
            self.requests.append(entry)
            self.event.notify_all()
            return self.statuses.pop(0) if self.statuses else 200

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.lock:
            ok = self.event.wait_for(lambda: predicate(self.requests), timeout)
            assert ok, f"timed out; got {self.requests!r}"
            return list(self.requests)


def _handler(recorder: Recorder) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _reply(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            recorder.record({"method": "GET", "path": self.path, "headers": self.headers})
            name, _, query = self.path.partition("?")
            # `?delay=SECONDS`: a slow download.
            delay = urllib.parse.parse_qs(query).get("delay")
            if delay:
                time.sleep(float(delay[0]))
            if name in recorder.files:
                self._reply(200, recorder.files[name])
            else:
                self._reply(404, b"not found")

        def do_POST(self) -> None:
            body = self._body()
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            status = recorder.record(
                {"method": "POST", "path": self.path, "headers": self.headers, "json": parsed}
            )
            self._reply(status, b"{}")

        def do_PUT(self) -> None:
            body = self._body()
            status = recorder.record(
                {"method": "PUT", "path": self.path, "headers": self.headers, "body": body}
            )
            host = self.headers.get("Host")
            self._reply(status, b"", {"Location": f"http://{host}/stored{self.path}?sig=abc"})

    return Handler


@pytest.fixture
def http_server() -> Iterator[tuple[str, Recorder]]:
    """A loopback HTTP server: serves `recorder.files`, records POST/PUT bodies."""
    recorder = Recorder()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()
