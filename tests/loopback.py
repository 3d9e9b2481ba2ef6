"""A real HTTP server on 127.0.0.1 with programmable answers, as a pytest fixture.

Routes map a path (with its query string, exactly as requested) to a list of responses served in
order, the last one repeating: ``[Reply(status=500), Reply(body=b"ok")]`` is "500 then 200".
Every request is logged with its headers so tests can assert what the client sent.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Reply:
    """One programmed response. ``etag``/``last_modified`` also enable 304 answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    send_length: bool = True


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    status: int


class LoopbackServer:
    """The server object handed to tests by the ``loopback_server`` fixture."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self.requests: list[LoggedRequest] = []
        self.inflight = 0
        self.max_inflight = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, *replies: Reply) -> str:
        """Program ``path``; returns its full URL."""
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            self._routes[path] = list(replies)
        return self.url(path)

    def serve_file(
        self, path: str, file: Path, *, content_type: str = "application/octet-stream"
    ) -> str:
        return self.route(path, Reply(body=file.read_bytes(), content_type=content_type))

    def requests_for(self, path: str) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def next_reply(self, path: str) -> Reply | None:
        with self._lock:
            replies = self._routes.get(path)
            if replies is None:
                return None
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def enter(self) -> None:
        with self._lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)

    def leave(self) -> None:
        with self._lock:
            self.inflight -= 1


def _not_modified(reply: Reply, headers: Mapping[str, str]) -> bool:
    inm = headers.get("if-none-match")
    if reply.etag and inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return reply.etag.removeprefix("W/") in tags or "*" in tags
    ims = headers.get("if-modified-since")
    if reply.last_modified and ims is not None:
        try:
            return parsedate_to_datetime(reply.last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            self._answer()

        def log_message(self, format: str, *args: object) -> None:
            # Keep pytest output clean; the request log is the record.
            return

        def _answer(self) -> None:
            server.enter()
            try:
                self._serve()
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (a timeout test); nothing to answer.
                pass
            finally:
                server.leave()

        def _serve(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server.next_reply(self.path) or Reply(status=404, body=b"no such route\n")
            status = 304 if reply.status == 200 and _not_modified(reply, headers) else reply.status
            server.log(LoggedRequest(self.command, self.path, headers, status))
            if reply.delay:
                time.sleep(reply.delay)
            body = b"" if status == 304 else reply.body
            self.send_response(status)
            self._send_headers(reply, body)
            self.wfile.write(body)
            self.wfile.flush()

        def _send_headers(self, reply: Reply, body: bytes) -> None:
            self.send_header("Content-Type", reply.content_type)
            if reply.etag:
                self.send_header("ETag", reply.etag)
            if reply.last_modified:
                self.send_header("Last-Modified", reply.last_modified)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.send_length:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()

    return Handler


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (fixed mtime) so ETags derived from it are stable."""
    return gzip.compress(data, mtime=0)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]


def html_page(title: str = "Error") -> bytes:
    return (
        b"<!DOCTYPE html>\n<html><head><title>"
        + title.encode()
        + b"</title></head><body>Something went wrong</body></html>\n"
    )


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


__all__: Sequence[str] = (
    "LoggedRequest",
    "LoopbackServer",
    "Reply",
    "gzip_bytes",
    "html_page",
    "loopback_server",
    "truncated",
)
