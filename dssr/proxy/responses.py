"""Where each of the app's responses ends, tracked while its bytes pass untouched.

The proxy must know when the app agreed to an upgrade (only a ``101`` makes the
connection raw) and when every response asked for is complete (to answer a request
itself in order). Bodies are counted, not read: a ``Content-Length`` body costs O(1)
per chunk of bytes; only heads, chunk size lines and trailers are searched.
"""

import re
from collections import deque

MAX_RESPONSE_HEAD = 64 * 1024
MAX_LINE = 1024
_STATUS = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")
_LENGTH = re.compile(rb"[0-9]{1,18}")
_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?")


class BadResponse(Exception):
    """The app sent something that is not an HTTP/1.1 response to what was asked."""


class ResponseFramer:
    """Follows the app's responses to the requests announced with ``expect``."""

    def __init__(self) -> None:
        self._asked: deque[tuple[bool, bool]] = deque()  # (a HEAD request, an upgrade)
        self._state = "head"  # head, body, chunk_size, chunk_end, trailer, raw
        self._buffer = b""  # a head or line begun in an earlier ``feed``
        self._left = 0  # bytes of the body or chunk still to come
        self._after = "head"  # the state once they have
        self._trailer_bytes = 0

    def expect(self, method: str, upgrade: bool) -> None:
        """A request went to the app: a response to it comes after the others'."""
        self._asked.append((method == "HEAD", upgrade))

    def idle(self) -> bool:
        """Whether every request sent has its whole response (nothing more is due)."""
        return self._state == "head" and not self._buffer and not self._asked

    def raw(self) -> bool:
        """Whether the rest is raw bytes (an agreed upgrade, or a body until close)."""
        return self._state == "raw"

    def feed(self, data: bytes) -> bool | None:
        """Follow ``data``; True when it holds the app's 101 to an upgrade request,
        False when it holds another answer to one, else None."""
        at, size, decided = 0, len(data), None
        while at < size and self._state != "raw":
            if self._state == "body":
                count = min(self._left, size - at)
                at += count
                self._left -= count
                if not self._left:
                    self._state = self._after
                continue
            limit = MAX_RESPONSE_HEAD if self._state == "head" else MAX_LINE
            marker = b"\r\n\r\n" if self._state == "head" else b"\r\n"
            piece, at = self._until(data, at, marker, limit)
            if piece is None:
                break
            found = getattr(self, "_" + self._state)(piece)
            decided = found if found is not None else decided
        return decided

    def _until(self, data: bytes, at: int, marker: bytes,
               limit: int) -> tuple[bytes | None, int]:
        """(the bytes before ``marker``, where reading goes on), or (None, end) while
        it has not arrived; what came so far is kept, at most ``limit`` bytes."""
        if not self._buffer:
            end = data.find(marker, at, at + limit + len(marker))
            if end >= 0:
                return data[at:end], end + len(marker)
            window, start = data[at:], 0
        else:
            start = len(self._buffer)
            window = self._buffer + data[at:at + limit + len(marker)]
            end = window.find(marker, max(0, start - len(marker) + 1))
            if end >= 0:
                self._buffer = b""
                return window[:end], at + end + len(marker) - start
        if len(window) > limit:
            raise BadResponse(f"a response head or line is longer than {limit} bytes")
        self._buffer = window
        return None, len(data)

    def _head(self, head: bytes) -> bool | None:
        lines = head.split(b"\r\n")
        status = _STATUS.fullmatch(lines[0])
        if status is None:
            raise BadResponse("not an HTTP/1.x status line")
        if not self._asked:
            raise BadResponse("a response to no request")
        code = int(status.group(1))
        head_request, upgrade = self._asked[0]
        if code == 101:
            if not upgrade:
                raise BadResponse("101 to a request that asked for no upgrade")
            self._asked.popleft()
            self._state = "raw"
            return True
        if code < 200:
            return None  # 100 Continue, 103 Early Hints: the final answer follows
        self._asked.popleft()
        coding, length = _framing(lines[1:])
        if head_request or code in (204, 304) or (coding is None and length == 0):
            self._state = "head"
        elif coding is not None:
            self._state = "chunk_size" if coding.endswith(b"chunked") else "raw"
        elif length is not None:
            self._state, self._left, self._after = "body", length, "head"
        else:
            self._state = "raw"  # the body ends when the app closes
        return False if upgrade else None

    def _chunk_size(self, line: bytes) -> None:
        found = _CHUNK.fullmatch(line.strip(b" \t"))
        if found is None:
            raise BadResponse("a bad chunk size line")
        self._left = int(found.group(1), 16)
        if self._left:
            self._state, self._after = "body", "chunk_end"
        else:
            self._state, self._trailer_bytes = "trailer", 0

    def _chunk_end(self, line: bytes) -> None:
        if line:
            raise BadResponse("a chunk does not end in CRLF")
        self._state = "chunk_size"

    def _trailer(self, line: bytes) -> None:
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_RESPONSE_HEAD:
            raise BadResponse("the trailer is too large")
        if not line:
            self._state = "head"


def _framing(lines: list[bytes]) -> tuple[bytes | None, int | None]:
    """The Transfer-Encoding (lower case, without spaces) and Content-Length of a
    response's header lines; ``BadResponse`` for a length that is not one number."""
    coding, lengths = None, set()
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise BadResponse("a header line without a colon")
        name = name.lower()
        if name == b"transfer-encoding":
            coding = value.strip().lower().replace(b" ", b"")
        elif name == b"content-length":
            lengths.add(value.strip())
    if len(lengths) > 1 or not all(_LENGTH.fullmatch(value) for value in lengths):
        raise BadResponse("a bad Content-Length")
    return coding, int(lengths.pop()) if lengths else None
