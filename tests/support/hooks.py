"""An HTTP endpoint in the test process that records what is POSTed to it and
answers with a status code the test chooses: a notification receiver, or the
target of an analysis webhook check."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelrollout.devenv.ports import free_port


@dataclass
class Hook:
    url: str
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)


@contextmanager
def running_hook(path: str = "/hook") -> Iterator[Hook]:
    port = free_port()
    hook = Hook(url=f"http://127.0.0.1:{port}{path}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with hook.lock:
                hook.received.append(body)
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok" if hook.status < 300 else b"not ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output to the test's own

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
