"""``HTTPChannel``'s private parser state, for deciding on a request from its head.

Relied on (checked on the releases in ``dssr.twisted_private.CHECKED``; driven by
tests/test_edge.py and tests/abuse/):

``HTTPChannel._receivedHeaderSize``, ``_receivedHeaderCount``
    The bytes and header lines of the current request head read so far.
``HTTPChannel._command``, ``_path``
    The request line's method and target, set once it is parsed (absent before).
``LineReceiver._buffer``
    The bytes read but not yet parsed: emptied, nothing more of them is parsed.
``HTTPChannel._respondToBadRequestAndDisconnect()``
    Called when the framing is malformed (the request line, a header, a chunk):
    ``HeadChannel`` turns it into ``malformed``.
"""

from twisted.web.http import HTTPChannel


class HeadChannel(HTTPChannel):
    """An ``HTTPChannel`` that shows its parser's state of the current request head."""

    def head_size(self) -> int:
        """The bytes of the current request head read so far."""
        return self._receivedHeaderSize

    def header_count(self) -> int:
        """The header lines of the current request read so far."""
        return self._receivedHeaderCount

    def request_method(self) -> bytes:
        """The current request's method, or b"" before its request line is parsed."""
        return getattr(self, "_command", None) or b""

    def request_target(self) -> bytes:
        """The current request's target, or b"" before its request line is parsed."""
        return getattr(self, "_path", None) or b""

    def stop_parsing(self) -> None:
        """Parse nothing more of what was read."""
        self._buffer = b""

    def malformed(self) -> None:
        """The request's framing is malformed: answer 400 and close (as Twisted does)."""
        super()._respondToBadRequestAndDisconnect()

    def _respondToBadRequestAndDisconnect(self) -> None:
        self.malformed()
