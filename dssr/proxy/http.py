"""Where each request a client sends ends, and the proxy's own small answers.

The proxy reads the client's requests (to route and check each one and take its
token out) and passes everything else through: a head, then a body of
``Content-Length`` bytes or chunks, or, once the app agreed to an upgrade
(WebSocket), raw bytes both ways. Each byte is looked at a bounded number of times,
so nothing a client sends costs more than reading it.
"""

from dssr.proxy.heads import (
    MAX_HEAD,
    MAX_LINE,
    BadRequest,
    Head,
    bare_line_end,
    chunk_size,
    parse_head,
    trailer_line,
)

REASONS = {302: "Found", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           408: "Request Timeout", 431: "Request Header Fields Too Large",
           501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable"}


class RequestFramer:
    """Splits the client's bytes into request heads and what follows each.

    ``feed`` returns a list of ``Head`` values and ``bytes`` (bodies, or anything once
    an upgrade was agreed), in order. After a request asking for an upgrade nothing
    more is read until ``upgrade_answered`` says how the app answered it.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0  # where the unread bytes of ``_buffer`` start
        self._scanned = 0  # bytes of the current head already checked for bare CR/LF
        self._span: int | None = None  # where the bytes being passed through start
        self._state = "head"
        self._left = 0  # body bytes left, or the current chunk's
        self._after = "head"  # the state once they are passed on
        self._trailer_bytes = 0  # bytes of the current trailer

    def feed(self, data: bytes) -> list[Head | bytes]:
        self._buffer += data
        out: list[Head | bytes] = []
        while self._at < len(self._buffer) and getattr(self, "_" + self._state)(out):
            pass
        self._flush(out)
        self._buffer = self._buffer[self._at:]
        self._scanned -= self._at
        self._at = 0
        return out

    def head_pending(self) -> bool:
        """Whether part of a request head has arrived and not the rest."""
        return self._state == "head" and self._at < len(self._buffer)

    def upgrade_answered(self, upgraded: bool) -> list[Head | bytes]:
        """The app answered the request that asked for an upgrade: raw bytes from now
        on if it agreed (101), else the next request; what ``feed`` would return."""
        if self._state != "wait":
            return []
        self._state = "raw" if upgraded else "head"
        return self.feed(b"")

    # -- the states: each consumes what it can and says whether to go on ----------

    def _head(self, out: list[Head | bytes]) -> bool:
        buffer, at = self._buffer, self._at
        end = buffer.find(b"\r\n\r\n", max(at, self._scanned - 3))
        if end < 0:
            if len(buffer) - at > MAX_HEAD:
                raise BadRequest(f"the request head is larger than {MAX_HEAD} bytes", 431)
            if bare_line_end(buffer, max(at, self._scanned)):
                raise BadRequest("the request head has a bare CR or LF (lines end in CRLF)")
            self._scanned = len(buffer) - buffer.endswith(b"\r")
            return False
        head = parse_head(buffer[at:end])
        length = head.body_length()
        self._flush(out)
        out.append(head)
        self._at = self._scanned = end + 4
        after = "wait" if head.upgrade() else "head"
        if length is None:
            self._state, self._after = "chunk_size", after
        elif length:
            self._state, self._left, self._after = "body", length, after
        else:
            self._state = after
        return True

    def _body(self, out: list[Head | bytes]) -> bool:
        count = min(self._left, len(self._buffer) - self._at)
        self._pass(count)
        self._left -= count
        if self._left == 0:
            self._state = self._after
        return True

    def _chunk_size(self, out: list[Head | bytes]) -> bool:
        line = self._line()
        if line is None:
            return False
        self._left = chunk_size(line)
        self._pass(len(line) + 2)
        if self._left:
            self._state = "chunk_data"
        else:
            self._state, self._trailer_bytes = "trailer", 0
        return True

    def _chunk_data(self, out: list[Head | bytes]) -> bool:
        count = min(self._left, len(self._buffer) - self._at)
        self._pass(count)
        self._left -= count
        if self._left == 0:
            self._state = "chunk_end"
        return True

    def _chunk_end(self, out: list[Head | bytes]) -> bool:
        if len(self._buffer) - self._at < 2:
            return False
        if self._buffer[self._at:self._at + 2] != b"\r\n":
            raise BadRequest("a chunk does not end in CRLF")
        self._pass(2)
        self._state = "chunk_size"
        return True

    def _trailer(self, out: list[Head | bytes]) -> bool:
        line = self._line()
        if line is None:
            return False
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_HEAD:
            raise BadRequest(f"the trailer is larger than {MAX_HEAD} bytes", 431)
        if line:
            trailer_line(line)
        self._pass(len(line) + 2)
        if not line:
            self._state = self._after
        return True

    def _wait(self, out: list[Head | bytes]) -> bool:
        if len(self._buffer) - self._at > MAX_HEAD:
            raise BadRequest("data sent before the upgrade was answered")
        return False

    def _raw(self, out: list[Head | bytes]) -> bool:
        self._pass(len(self._buffer) - self._at)
        return False

    # -- helpers ------------------------------------------------------------------

    def _line(self) -> bytes | None:
        """The next CRLF-ended line (without it), or None until it has arrived."""
        end = self._buffer.find(b"\r\n", self._at, self._at + MAX_LINE + 2)
        if end < 0:
            if len(self._buffer) - self._at > MAX_LINE:
                raise BadRequest(f"a chunk size or trailer line is longer than {MAX_LINE}")
            return None
        return self._buffer[self._at:end]

    def _pass(self, count: int) -> None:
        """Pass ``count`` bytes through, as part of one span with those just before."""
        if self._span is None:
            self._span = self._at
        self._at += count

    def _flush(self, out: list[Head | bytes]) -> None:
        if self._span is not None and self._span < self._at:
            out.append(self._buffer[self._span:self._at])
        self._span = None


def error_page(code: int, message: str, extra: tuple[str, ...] = ()) -> bytes:
    """A small plain-text response that closes the connection; ``message`` and
    ``extra`` header lines are DSSR's own text, never bytes from the request."""
    body = (message + "\n").encode("utf-8")
    lines = [f"HTTP/1.1 {code} {REASONS[code]}", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(body)}", "Connection: close", "Cache-Control: no-store",
             "X-Content-Type-Options: nosniff", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
