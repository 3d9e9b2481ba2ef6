"""The one HTTP client of tracker (the only module that imports httpx).

Every source that fetches over HTTP goes through :class:`Fetcher`, so timeouts, retries,
conditional GET, gzip handling, the size cap and the User-Agent are decided once, here.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import httpx

from tracker import __version__
from tracker.errors import SourceError

USER_AGENT = f"tracker/{__version__} (Linux stable backport assistant)"

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip"})
_HTML_PREFIXES = (b"<!doctype", b"<html")
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Expect(Enum):
    """What the caller wants in the body; MBOX turns HTML error pages into errors."""

    ANY = "any"
    MBOX = "mbox"


@dataclass(frozen=True)
class Validators:
    """What a source stores between runs to make its next GET conditional."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """One completed fetch. On 304 ``content`` is empty and ``not_modified`` is True."""

    url: str
    status: int
    content: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool
    content_type: str | None

    @property
    def validators(self) -> Validators:
        return Validators(etag=self.etag, last_modified=self.last_modified)


@dataclass(frozen=True)
class FetchSettings:
    """Knobs of a :class:`Fetcher`; the defaults suit lore.kernel.org from a cron job."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    backoff_max: float = 30.0
    max_bytes: int = 256 * 1024 * 1024
    max_concurrency: int = 4
    user_agent: str = USER_AGENT


class Fetcher:
    """A thread-safe HTTP client. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        settings: FetchSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or FetchSettings()
        if self.settings.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._sleep = sleep
        # The semaphore, not only httpx's pool limit, bounds concurrency: a pool limit would
        # queue requests inside httpx where the pool timeout would count against them.
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrency)
        self._client = httpx.Client(
            timeout=httpx.Timeout(
                self.settings.read_timeout, connect=self.settings.connect_timeout
            ),
            limits=httpx.Limits(max_connections=self.settings.max_concurrency),
            headers={"User-Agent": self.settings.user_agent, "Accept-Encoding": "gzip"},
            follow_redirects=True,
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self, url: str, *, validators: Validators | None = None, expect: Expect = Expect.ANY
    ) -> FetchResult:
        """GET ``url``; with ``validators`` the request is conditional (304 -> not_modified)."""
        return self._fetch("GET", url, validators, expect)

    def post(self, url: str, *, expect: Expect = Expect.ANY) -> FetchResult:
        """POST with an empty body: public-inbox serves search results as mbox only to POST."""
        return self._fetch("POST", url, None, expect)

    def fetch_many(
        self,
        urls: Sequence[str],
        *,
        validators: Mapping[str, Validators] | None = None,
        expect: Expect = Expect.ANY,
    ) -> list[FetchResult | SourceError]:
        """GET every URL, at most ``max_concurrency`` at once; results in input order.

        A failed URL yields its SourceError in its slot rather than losing the others' work.
        """
        known = validators or {}

        def one(url: str) -> FetchResult | SourceError:
            try:
                return self.get(url, validators=known.get(url), expect=expect)
            except SourceError as err:
                return err

        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency) as pool:
            return list(pool.map(one, urls))

    def _fetch(
        self, method: str, url: str, validators: Validators | None, expect: Expect
    ) -> FetchResult:
        _check_url(url)
        headers = _conditional_headers(validators)
        with self._slots:
            result = self._with_retries(method, url, headers)
        if result.not_modified:
            return result.public(b"")
        return _finish_body(result, url, expect, self.settings.max_bytes)

    def _with_retries(self, method: str, url: str, headers: Mapping[str, str]) -> _Raw:
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                result = self._once(method, url, headers)
            except httpx.TransportError as err:
                if last:
                    raise SourceError(f"{method} {url} failed: {_describe(err)}") from err
                self._sleep(self._delay(attempt, None))
                continue
            if result.status in _RETRY_STATUSES and not last:
                self._sleep(self._delay(attempt, result))
                continue
            if result.status >= 300 and not result.not_modified:
                raise SourceError(f"{method} {url} failed: HTTP {result.status}")
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _once(self, method: str, url: str, headers: Mapping[str, str]) -> _Raw:
        with self._client.stream(method, url, headers=headers) as response:
            if response.status_code == 304:
                return _Raw.of(response, url, b"")
            if response.status_code >= 300:
                # Error bodies are not needed and may be large; do not read them.
                return _Raw.of(response, url, b"")
            body = _read_capped(response, url, self.settings.max_bytes)
            return _Raw.of(response, url, body)

    def _delay(self, attempt: int, result: _Raw | None) -> float:
        delay = self.settings.backoff * float(2**attempt)
        if result is not None and result.retry_after is not None:
            delay = max(delay, result.retry_after)
        return min(delay, self.settings.backoff_max)


@dataclass(frozen=True)
class _Raw(FetchResult):
    """A FetchResult before body checks, carrying what the retry loop needs."""

    retry_after: float | None = None

    @classmethod
    def of(cls, response: httpx.Response, url: str, body: bytes) -> _Raw:
        return cls(
            url=url,
            status=response.status_code,
            content=body,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            not_modified=response.status_code == 304,
            content_type=response.headers.get("content-type"),
            retry_after=_parse_retry_after(response.headers.get("retry-after")),
        )

    def public(self, content: bytes) -> FetchResult:
        return FetchResult(
            url=self.url,
            status=self.status,
            content=content,
            etag=self.etag,
            last_modified=self.last_modified,
            not_modified=self.not_modified,
            content_type=self.content_type,
        )


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"not an http(s) URL: {url!r}")


def _conditional_headers(validators: Validators | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if validators is None:
        return headers
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _read_capped(response: httpx.Response, url: str, cap: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise SourceError(f"response from {url} is {declared} bytes, over the {cap} byte cap")
    chunks: list[bytes] = []
    total = 0
    # Raw bytes, decoded by us: httpx's decoder accepts a cut-off gzip stream silently.
    for chunk in response.iter_raw():
        total += len(chunk)
        if total > cap:
            raise SourceError(f"response from {url} exceeds the {cap} byte cap")
        chunks.append(chunk)
    return _decode_transfer(b"".join(chunks), response.headers.get("content-encoding"), url, cap)


def _decode_transfer(body: bytes, encoding: str | None, url: str, cap: int) -> bytes:
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding in ("gzip", "x-gzip"):
        return gunzip(body, url=url, cap=cap)
    raise SourceError(f"unsupported Content-Encoding {coding!r} from {url}")


def _finish_body(raw: _Raw, url: str, expect: Expect, cap: int) -> FetchResult:
    body = raw.content
    if _is_gzip(raw, url):
        body = gunzip(body, url=url, cap=cap)
    if expect is Expect.MBOX and _looks_like_html(raw.content_type, body):
        raise SourceError(f"expected an mbox, got HTML from {url}")
    return raw.public(body)


def _is_gzip(raw: _Raw, url: str) -> bool:
    # lore serves t.mbox.gz as application/gzip without Content-Encoding, so httpx leaves it
    # compressed. Without the magic the server (or httpx) has already inflated it.
    media = (raw.content_type or "").split(";")[0].strip().lower()
    labelled = media in _GZIP_TYPES or urlsplit(url).path.endswith(".gz")
    return labelled and raw.content.startswith(_GZIP_MAGIC)


def _looks_like_html(content_type: str | None, body: bytes) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    if media in ("text/html", "application/xhtml+xml"):
        return True
    head = body[:512].lstrip().lower()
    return head.startswith(_HTML_PREFIXES)


def gunzip(data: bytes, *, url: str, cap: int) -> bytes:
    """Inflate every gzip member of ``data``; a cut-off stream is an error, not a short mbox."""
    out: list[bytes] = []
    total = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        try:
            piece = inflater.decompress(rest, cap - total + 1)
        except zlib.error as err:
            raise SourceError(f"bad gzip data from {url}: {err}") from err
        total += len(piece)
        if total > cap or inflater.unconsumed_tail:
            raise SourceError(f"gzip body from {url} inflates past the {cap} byte cap")
        if not inflater.eof:
            raise SourceError(f"truncated gzip from {url}")
        out.append(piece)
        rest = inflater.unused_data.lstrip(b"\0")
    return b"".join(out)


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


def _describe(err: httpx.TransportError) -> str:
    if isinstance(err, httpx.TimeoutException):
        return f"timed out ({type(err).__name__})"
    return f"{type(err).__name__}: {err}"


def iter_ok(results: Iterable[FetchResult | SourceError]) -> list[FetchResult]:
    """The successful results of :meth:`Fetcher.fetch_many`, for callers that skip failures."""
    return [r for r in results if isinstance(r, FetchResult)]
