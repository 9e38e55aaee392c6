"""Just enough HTTP/1.1 for the proxy: request heads, where each request ends, errors.

The proxy reads the client's requests (to route them and take its token out) and
passes the app's responses through untouched, so only requests are framed here:
a head, then a body of ``Content-Length`` bytes or chunks, or, after an upgrade
(WebSocket), raw bytes both ways.
"""

from dataclasses import dataclass, replace

MAX_HEAD = 64 * 1024


class BadRequest(Exception):
    """The client sent something that is not an HTTP/1.1 request DSSR can pass on."""


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

    def upgrade(self) -> bool:
        """Whether the request asks to switch protocols (WebSocket)."""
        tokens = (self.header("connection") or "").lower().replace(" ", "").split(",")
        return "upgrade" in tokens and self.header("upgrade") is not None

    def body_length(self) -> int | None:
        """The body's length; None for a chunked body."""
        coding = self.header("transfer-encoding")
        if coding is not None:
            if coding.lower().replace(" ", "").split(",")[-1] != "chunked":
                raise BadRequest("a request body must be chunked or have a length")
            return None
        length = self.header("content-length")
        if length is None:
            return 0
        if not length.strip().isdigit():
            raise BadRequest("bad Content-Length")
        return int(length)

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_head(data: bytes) -> Head:
    """The head in ``data`` (up to and without the blank line)."""
    lines = data.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1]:
        raise BadRequest("not an HTTP/1.x request line")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest("bad header line")
        headers.append((name, value.strip()))
    return Head(parts[0], parts[1], parts[2], tuple(headers))


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


class RequestFramer:
    """Splits the client's bytes into request heads and what follows each.

    ``feed`` returns a list of ``Head`` values and ``bytes`` (body, or anything once
    a request upgraded the connection), in order.
    """

    def __init__(self):
        self._buffer = b""
        self._state = "head"
        self._left = 0  # body bytes left, or the current chunk's
        self._after = "head"  # the state once they are passed on

    def feed(self, data: bytes) -> list:
        self._buffer += data
        out: list = []
        while self._buffer:
            step = getattr(self, "_" + self._state)(out)
            if not step:
                break
        return out

    def _raw(self, out) -> bool:
        out.append(self._take(len(self._buffer)))
        return False

    def _head(self, out) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise BadRequest("request head too large")
            return False
        head = parse_head(self._buffer[:end])
        self._buffer = self._buffer[end + 4:]
        out.append(head)
        if head.upgrade():
            self._state = "raw"
            return True
        length = head.body_length()
        if length is None:
            self._state = "chunk_size"
        elif length:
            self._state, self._left, self._after = "body", length, "head"
        return True

    def _body(self, out) -> bool:
        chunk = self._take(min(self._left, len(self._buffer)))
        out.append(chunk)
        self._left -= len(chunk)
        if self._left == 0:
            self._state = self._after
        return True

    def _chunk_size(self, out) -> bool:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > 1024:
                raise BadRequest("bad chunk size line")
            return False
        size = self._buffer[:end].split(b";")[0].strip()
        try:
            self._left = int(size, 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        out.append(self._take(end + 2))
        self._state, self._after = ("body", "chunk_end") if self._left else ("trailer", "")
        return True

    def _chunk_end(self, out) -> bool:
        if len(self._buffer) < 2:
            return False
        out.append(self._take(2))
        self._state = "chunk_size"
        return True

    def _trailer(self, out) -> bool:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            return False
        out.append(self._take(end + 2))
        if end == 0:
            self._state = "head"
        return True

    def _take(self, count: int) -> bytes:
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken


def error_page(code: int, reason: str, message: str, extra: tuple = ()) -> bytes:
    """A small plain-text response that closes the connection."""
    body = (message + "\n").encode("utf-8")
    lines = [f"HTTP/1.1 {code} {reason}", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(body)}", "Connection: close", "Cache-Control: no-store",
             *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
