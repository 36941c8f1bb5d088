"""A small fault-injecting HTTP proxy in front of a real server, for faults it cannot produce on demand.

Orthanc answers correctly; to see the client handle a 503 followed by recovery, or a multipart body
cut off in the middle, this proxy forwards each request to the real server and applies the next fault
of its plan to the answer. Everything it does is counted, so tests can assert how often the client
retried. It listens on a free loopback port and is stopped by the test that started it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import httpx

Fault = Literal["pass", "503", "truncate"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class FaultProxy:
    """Forwards to ``target``; the i-th request gets ``plan[i]`` (then ``"pass"`` once the plan is used up)."""

    def __init__(self, target: str, plan: Iterable[Fault]) -> None:
        self.target = target.rstrip("/")
        self.plan: deque[Fault] = deque(plan)
        self.requests: list[tuple[str, str, Fault]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _next_fault(self, method: str, path: str) -> Fault:
        with self._lock:
            fault = self.plan.popleft() if self.plan else "pass"
            self.requests.append((method, path, fault))
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                fault = proxy._next_fault(self.command, self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if fault == "503":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Accept-Encoding"] = "identity"
                with httpx.Client(timeout=60.0) as client:
                    answer = client.request(self.command, proxy.target + self.path, headers=headers, content=body)
                content = answer.content
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                if fault == "truncate":
                    self.send_header("Connection", "close")  # length unknown: the body ends when we close
                    self.end_headers()
                    self.wfile.write(content[: len(content) // 2])
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        return Handler

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def fault_proxy(target: str, plan: Iterable[Fault]) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target, plan).start()
    try:
        yield proxy
    finally:
        proxy.stop()
