"""An artifact store in the test process: a plain HTTP(S) server on 127.0.0.1 that
serves files the test puts in it, and misbehaves on request (answers some statuses
first, truncates, holds a response back until the test says so, redirects, demands
a bearer token). It records every request (path, query, Authorization header), so a
test can count attempts and see what reached the store."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modelrollout.devenv.ports import free_port

# A held-back response waits at most this long, so a failed test never hangs a thread.
GATE_TIMEOUT_SECONDS = 60.0


@dataclass
class Served:
    body: bytes
    # Statuses answered (with a short body) to the first requests, one each, before the file.
    failures: list[int] = field(default_factory=list)
    # Announce the whole length but send only this many bytes, then close.
    truncate_at: int | None = None
    # Leave out Content-Length: the body ends when the connection closes.
    declare_length: bool = True
    # Answer only once this event is set.
    gate: threading.Event | None = None
    # Answer 302 to this URL instead.
    redirect_to: str | None = None


@dataclass(frozen=True)
class Seen:
    path: str
    query: str
    authorization: str | None


@dataclass
class Store:
    url: str
    token: str | None = None  # when set, requests without `Bearer <token>` get 401
    files: dict[str, Served] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, body: bytes, **behaviour: Any) -> str:
        """Serve `body` at `path`; its URL."""
        with self.lock:
            self.files[path] = Served(body, **behaviour)
        return self.url + path

    def put_file(self, path: str, source: str | Path, **behaviour: Any) -> str:
        return self.put(path, Path(source).read_bytes(), **behaviour)

    def requests(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if path is None or s.path == path]


@contextmanager
def running_store(
    tls: tuple[Path, Path] | None = None, token: str | None = None
) -> Iterator[Store]:
    """An artifact store on a free loopback port; `tls` = (certificate, key) serves HTTPS."""
    port = free_port()
    scheme = "https" if tls else "http"
    store = Store(url=f"{scheme}://127.0.0.1:{port}", token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            with store.lock:
                store.seen.append(Seen(parts.path, parts.query, self.headers.get("Authorization")))
                served = store.files.get(parts.path)
                failure = served.failures.pop(0) if served and served.failures else None
            if store.token and self.headers.get("Authorization") != f"Bearer {store.token}":
                return self._short(401)
            if served is None:
                return self._short(404)
            if served.gate is not None and not served.gate.wait(GATE_TIMEOUT_SECONDS):
                return self._short(504)
            if failure is not None:
                return self._short(failure)
            if served.redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", served.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if served.declare_length:
                self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            body = served.body if served.truncate_at is None else served.body[: served.truncate_at]
            self.wfile.write(body)
            self.close_connection = True
            return None

        def _short(self, status: int) -> None:
            body = f"status {status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output to the test's own

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile=str(tls[0]), keyfile=str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield store
    finally:
        with store.lock:  # release anything still held back
            gates = [s.gate for s in store.files.values() if s.gate is not None]
        for gate in gates:
            gate.set()
        server.shutdown()
        thread.join()
        server.server_close()
