"""Request heads as the proxy accepts them: strictly HTTP/1.1 (RFC 9112), bounded, and
with exactly one way to find where the body ends; cookies in and out of them.

Everything here is a pure function of bytes, so each refusal is cheap and tested
without a socket: the proxy parses heads before it knows who sent them.
"""

import re
from dataclasses import dataclass, replace

MAX_HEAD = 32 * 1024  # bytes of a request line and its header lines together
MAX_HEADERS = 100
MAX_LINE = 1024  # bytes of a chunk size line (with extensions) or a trailer line

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(rb"/[\x21-\x7e]*")  # origin-form: a path, visible ASCII only
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_LENGTH = re.compile(rb"[0-9]{1,18}")
_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[\t\x20-\x7e]*)?")
_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


class BadRequest(Exception):
    """The client sent something the proxy will not pass on; ``status`` is the answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Head:
    """A request head: method, target, version, and the header lines as (name, value)."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or None."""
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    def all(self, name: str) -> list[str]:
        """Every header called ``name`` (any case), in order."""
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def upgrade(self) -> bool:
        """Whether the request asks to switch protocols (WebSocket)."""
        tokens = (self.header("connection") or "").lower().replace(" ", "").split(",")
        return "upgrade" in tokens and self.header("upgrade") is not None

    def body_length(self) -> int | None:
        """The body's length; None for a chunked body. Exactly one framing is allowed:
        ``Transfer-Encoding: chunked`` alone, or ``Content-Length`` (ASCII digits,
        repeated only with the same value), or neither (no body)."""
        codings, lengths = self.all("transfer-encoding"), self.all("content-length")
        if codings and lengths:
            raise BadRequest("Transfer-Encoding and Content-Length together")
        if codings:
            if len(codings) > 1 or codings[0].lower() != "chunked":
                raise BadRequest("the only Transfer-Encoding accepted is chunked", 501)
            return None
        if not lengths:
            return 0
        if len(set(lengths)) > 1:
            raise BadRequest("several differing Content-Length headers")
        if not _LENGTH.fullmatch(lengths[0].encode("latin-1")):
            raise BadRequest("Content-Length must be 1 to 18 ASCII digits")
        return int(lengths[0])

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def bare_line_end(data: bytes, start: int = 0) -> bool:
    """Whether ``data`` from ``start`` on (a head, whole or begun) has a CR or LF
    outside a CRLF; a CR ending ``data`` may still get its LF."""
    end = len(data) - 1 if data.endswith(b"\r") else len(data)
    return _BARE.search(data, start, end) is not None


def parse_head(data: bytes) -> Head:
    """The request head in ``data`` (up to and without the blank line)."""
    if len(data) > MAX_HEAD:
        raise BadRequest(f"the request head is larger than {MAX_HEAD} bytes", 431)
    if bare_line_end(data):
        raise BadRequest("the request head has a bare CR or LF (lines end in CRLF)")
    lines = data.split(b"\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(f"more than {MAX_HEADERS} header lines", 431)
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise BadRequest("not an HTTP/1.1 request line (method, target, version)")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest("the protocol must be HTTP/1.1 or HTTP/1.0")
    if not _TARGET.fullmatch(target):
        raise BadRequest("the request target must be a path: '/' then visible ASCII")
    headers = [_header(line) for line in lines[1:]]
    if sum(name.lower() == "host" for name, _ in headers) > 1:
        raise BadRequest("more than one Host header")
    return Head(method.decode(), target.decode(), version.decode(), tuple(headers))


def _header(line: bytes) -> tuple[str, str]:
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.fullmatch(name):
        raise BadRequest("a header line is not a token, a colon and a value")
    value = value.strip(b" \t")
    if not _VALUE.fullmatch(value):
        raise BadRequest("a header value has a control character")
    return name.decode(), value.decode("latin-1")


def chunk_size(line: bytes) -> int:
    """The size in a chunk size line (without its CRLF): hex digits only, bounded."""
    found = _CHUNK.fullmatch(line)
    if found is None:
        raise BadRequest("a chunk size must be 1 to 16 hex digits")
    return int(found.group(1), 16)


def trailer_line(line: bytes) -> None:
    """Refuse a trailer line that is not a header line."""
    _header(line)


def without_cookie(head: Head, cookie: str) -> Head:
    """``head`` with the cookie called ``cookie`` taken out of its Cookie headers."""
    headers = []
    for name, value in head.headers:
        if name.lower() == "cookie":
            kept = [c for c in value.split(";") if c.strip().partition("=")[0] != cookie]
            if not kept:
                continue
            value = ";".join(kept).strip()
        headers.append((name, value))
    return replace(head, headers=tuple(headers))


def cookie_value(head: Head, cookie: str) -> str | None:
    """The value of the cookie called ``cookie``, or None."""
    for name, value in head.headers:
        if name.lower() == "cookie":
            for pair in value.split(";"):
                key, _, found = pair.strip().partition("=")
                if key == cookie:
                    return found
    return None
