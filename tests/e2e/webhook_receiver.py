"""A webhook receiver for the tests: a real HTTP server on a loopback port, in a thread of
the test process, that records every request as it arrives and can be told to fail, to
hang past chatd's timeout, or to go away and come back on the same port."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chatd.launcher import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int  # the status this receiver answered with (perhaps too late for chatd)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    """`url(path)` to give chatd. Requests to a path starting with `/fail` are always
    answered 500; to any other path, `fail_next` requests are answered 500 and `hang_next`
    are held `hang_for` seconds before their 200."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.fail_next = 0
        self.hang_next = 0
        self.hang_for = 0.0
        self.delay = 0.0  # every answer waits this long (a slow endpoint)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status, wait = receiver._decide(self.path)
                # Recorded as it arrives, before any wait: the order of arrival is what the
                # tests compare.
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body, status))
                if wait:
                    time.sleep(wait)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _decide(self, path: str) -> tuple[int, float]:
        with self._lock:
            if path.startswith("/fail"):
                return 500, self.delay
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, self.delay
            if self.hang_next > 0:
                self.hang_next -= 1
                return 200, self.hang_for
            return 200, self.delay

    def stop(self) -> None:
        """Gone: connections to the port are refused until `start` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def snapshot(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]
