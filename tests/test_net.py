"""tracker.net against a real HTTP server on 127.0.0.1 (tests/loopback.py)."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path

import pytest

from tests import loopback
from tests.loopback import LoopbackServer, Reply, gzip_bytes, html_page, truncated
from tracker import __version__
from tracker.errors import SourceError
from tracker.net import Expect, Fetcher, FetchResult, FetchSettings, Validators, iter_ok

# Until tests/conftest.py imports it, make the fixture visible to this module.
loopback_server = loopback.loopback_server

MBOX = (
    Path(__file__).parent
    / "data"
    / "samples"
    / "lore"
    / "sparclinux_fix-lazy-mmu-mode_2025-03.mbox"
)
LAST_MODIFIED = "Sun, 02 Mar 2025 14:55:00 GMT"


def fast(
    *,
    retries: int = 2,
    read_timeout: float = 2.0,
    max_bytes: int = 10_000_000,
    max_concurrency: int = 4,
) -> Fetcher:
    """A Fetcher with tiny backoff so retry tests take milliseconds."""
    settings = FetchSettings(
        connect_timeout=2.0,
        read_timeout=read_timeout,
        retries=retries,
        backoff=0.001,
        backoff_max=0.01,
        max_bytes=max_bytes,
        max_concurrency=max_concurrency,
    )
    return Fetcher(settings)


def test_plain_get_sends_user_agent(loopback_server: LoopbackServer) -> None:
    url = loopback_server.route("/a.txt", Reply(body=b"hello", content_type="text/plain"))
    with fast() as fetcher:
        result = fetcher.get(url)
    assert result == FetchResult(url, 200, b"hello", None, None, False, "text/plain")
    (req,) = loopback_server.requests_for("/a.txt")
    assert req.headers["user-agent"].startswith(f"tracker/{__version__}")


def test_second_sync_is_conditional_and_gets_304(loopback_server: LoopbackServer) -> None:
    body = gzip_bytes(MBOX.read_bytes())
    url = loopback_server.route(
        "/all/x@y/t.mbox.gz",
        Reply(body=body, content_type="application/gzip", etag='"v1"', last_modified=LAST_MODIFIED),
    )
    with fast() as fetcher:
        first = fetcher.get(url, expect=Expect.MBOX)
        second = fetcher.get(url, validators=first.validators, expect=Expect.MBOX)
    assert first.content == MBOX.read_bytes()
    assert first.validators == Validators('"v1"', LAST_MODIFIED)
    assert second.not_modified and second.status == 304 and second.content == b""
    assert second.validators == first.validators
    one, two = loopback_server.requests_for("/all/x@y/t.mbox.gz")
    assert "if-none-match" not in one.headers
    assert two.headers["if-none-match"] == '"v1"'
    assert two.headers["if-modified-since"] == LAST_MODIFIED
    assert two.status == 304


def test_if_modified_since_alone_gives_304(loopback_server: LoopbackServer) -> None:
    url = loopback_server.route("/new.atom", Reply(body=b"<feed/>", last_modified=LAST_MODIFIED))
    with fast() as fetcher:
        result = fetcher.get(url, validators=Validators(last_modified=LAST_MODIFIED))
    assert result.not_modified


def test_changed_etag_gives_new_content(loopback_server: LoopbackServer) -> None:
    url = loopback_server.route("/f", Reply(body=b"new", etag='"v2"'))
    with fast() as fetcher:
        result = fetcher.get(url, validators=Validators(etag='"v1"'))
    assert (result.status, result.content, result.etag) == (200, b"new", '"v2"')


def test_500_then_200_is_retried(loopback_server: LoopbackServer) -> None:
    url = loopback_server.route("/flaky", Reply(status=500), Reply(status=503), Reply(body=b"ok"))
    with fast(retries=2) as fetcher:
        assert fetcher.get(url).content == b"ok"
    assert [r.status for r in loopback_server.requests_for("/flaky")] == [500, 503, 200]


def test_persistent_500_names_url_and_status(loopback_server: LoopbackServer) -> None:
    url = loopback_server.route("/down", Reply(status=502))
    with fast(retries=1) as fetcher, pytest.raises(SourceError) as err:
        fetcher.get(url)
    assert url in str(err.value) and "502" in str(err.value)
    assert len(loopback_server.requests_for("/down")) == 2


def test_404_is_not_retried(loopback_server: LoopbackServer) -> None:
    url = loopback_server.url("/missing")
    with fast(retries=3) as fetcher, pytest.raises(SourceError, match="HTTP 404"):
        fetcher.get(url)
    assert len(loopback_server.requests_for("/missing")) == 1


def test_slow_response_times_out_after_retries(loopback_server: LoopbackServer) -> None:
    url = loopback_server.route("/slow", Reply(body=b"late", delay=1.0))
    with fast(retries=1, read_timeout=0.2) as fetcher, pytest.raises(SourceError) as err:
        fetcher.get(url)
    assert "timed out" in str(err.value) and url in str(err.value)
    assert len(loopback_server.requests_for("/slow")) == 2


def test_connection_refused_is_a_source_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with fast(retries=1) as fetcher, pytest.raises(SourceError, match="ConnectError"):
        fetcher.get(f"http://127.0.0.1:{port}/x")


def test_gzip_mbox_is_inflated_by_content_type(loopback_server: LoopbackServer) -> None:
    data = b"From x\nSubject: hi\n\nbody\n"
    url = loopback_server.route(
        "/search?q=a&x=m", Reply(body=gzip_bytes(data), content_type="application/gzip")
    )
    with fast() as fetcher:
        assert fetcher.post(url, expect=Expect.MBOX).content == data
    assert loopback_server.requests_for("/search?q=a&x=m")[0].method == "POST"


def test_multi_member_gzip(loopback_server: LoopbackServer) -> None:
    body = gzip_bytes(b"part one\n") + gzip_bytes(b"part two\n")
    url = loopback_server.route("/t.mbox.gz", Reply(body=body))
    with fast() as fetcher:
        assert fetcher.get(url).content == b"part one\npart two\n"


def test_content_encoding_gzip_is_decoded(loopback_server: LoopbackServer) -> None:
    body = gzip_bytes(b"From x\n\nplain\n")
    url = loopback_server.route(
        "/enc", Reply(body=body, content_type="text/plain", headers={"Content-Encoding": "gzip"})
    )
    with fast() as fetcher:
        assert fetcher.get(url, expect=Expect.MBOX).content == b"From x\n\nplain\n"


def test_truncated_gzip_is_an_error(loopback_server: LoopbackServer) -> None:
    body = truncated(gzip_bytes(MBOX.read_bytes()))
    url = loopback_server.route("/all/cut@x/t.mbox.gz", Reply(body=body))
    with fast() as fetcher, pytest.raises(SourceError, match="truncated gzip"):
        fetcher.get(url, expect=Expect.MBOX)


def test_truncated_content_encoding_is_an_error(loopback_server: LoopbackServer) -> None:
    body = truncated(gzip_bytes(MBOX.read_bytes()))
    url = loopback_server.route("/enc-cut", Reply(body=body, headers={"Content-Encoding": "gzip"}))
    with fast() as fetcher, pytest.raises(SourceError, match="truncated gzip"):
        fetcher.get(url)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=html_page(), content_type="text/html; charset=utf-8"),
        Reply(body=html_page(), content_type="application/octet-stream"),
        Reply(body=b"  <html><body>maintenance</body></html>", content_type="text/plain"),
    ],
)
def test_html_where_mbox_expected(loopback_server: LoopbackServer, reply: Reply) -> None:
    url = loopback_server.route("/all/m@x/t.mbox.gz", reply)
    with fast() as fetcher, pytest.raises(SourceError) as err:
        fetcher.get(url, expect=Expect.MBOX)
    assert str(err.value) == f"expected an mbox, got HTML from {url}"


def test_html_is_fine_when_not_expecting_mbox(loopback_server: LoopbackServer) -> None:
    url = loopback_server.route("/page", Reply(body=html_page(), content_type="text/html"))
    with fast() as fetcher:
        assert fetcher.get(url).content.startswith(b"<!DOCTYPE")


@pytest.mark.parametrize("send_length", [True, False])
def test_size_cap(loopback_server: LoopbackServer, send_length: bool) -> None:
    url = loopback_server.route("/big", Reply(body=b"x" * 50_000, send_length=send_length))
    with fast(max_bytes=10_000) as fetcher, pytest.raises(SourceError, match="byte cap"):
        fetcher.get(url)


def test_gzip_bomb_is_capped(loopback_server: LoopbackServer) -> None:
    url = loopback_server.route("/bomb.gz", Reply(body=gzip_bytes(b"\0" * 1_000_000)))
    with fast(max_bytes=100_000) as fetcher, pytest.raises(SourceError, match="byte cap"):
        fetcher.get(url)


def test_fetch_many_limits_concurrency(loopback_server: LoopbackServer) -> None:
    urls = [loopback_server.route(f"/p{i}", Reply(body=b"%d" % i, delay=0.15)) for i in range(8)]
    with fast(max_concurrency=2) as fetcher:
        results = fetcher.fetch_many(urls)
    assert [r.content for r in iter_ok(results)] == [b"%d" % i for i in range(8)]
    assert loopback_server.max_inflight == 2


def test_fetch_many_reports_failures_in_place(loopback_server: LoopbackServer) -> None:
    good = loopback_server.route("/good", Reply(body=b"ok", etag='"e"'))
    bad = loopback_server.url("/bad")
    with fast(retries=0) as fetcher:
        results = fetcher.fetch_many([bad, good], validators={good: Validators(etag='"e"')})
    assert isinstance(results[0], SourceError)
    assert isinstance(results[1], FetchResult) and results[1].not_modified


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "127.0.0.1/x"])
def test_only_http_urls(url: str) -> None:
    with fast() as fetcher, pytest.raises(SourceError, match="not an http"):
        fetcher.get(url)


def test_gzip_helper_roundtrip() -> None:
    assert gzip.decompress(gzip_bytes(b"abc")) == b"abc"
