"""The HTTP/1.1 connection: each request decided on from its head, every phase bounded
in time, every refusal answered with JSON.

A connection is in one of these states:

- ``head``: a request line and headers are coming. The deadline (``header_timeout``,
  spread a little: ``EdgeLimits.deadline_spread``) runs from the request's first byte
  (from the connect, for the first request) and no later byte moves it.
- ``body``: the request was admitted and its body is coming, in memory, at most
  ``max_body`` bytes, until ``request_timeout`` after the request's first byte.
- ``busy``: the API is answering; no deadline here (the connector bounds its work).
- ``idle``: between keep-alive requests, for at most ``idle_timeout``.
- ``closing``: an answer went out with ``Connection: close``. What the client still
  sends is discarded unread (so it sees the answer rather than a reset), for at most
  ``linger`` seconds and ``max_drained`` bytes. An admitted client's body over
  ``max_body`` (413) is drained while it keeps coming, as nginx's lingering close
  does: a client that writes its whole body before reading reads its 413. It is cut
  after ``linger`` seconds of silence, or ``request_timeout`` seconds or
  ``max_drained`` bytes in all; a body announced longer than that is not drained.
"""

from io import BytesIO

from twisted.internet.interfaces import ITCPTransport
from twisted.logger import Logger
from twisted.web.server import Request

from dssr.edge.answers import raw_answer
from dssr.edge.head import check_head
from dssr.errors import (
    BadRequest,
    BodyTooLarge,
    DSSRError,
    HeadersTooLarge,
    RequestTimeout,
    TargetTooLong,
)
from dssr.twisted_private.http import HeadChannel

_log = Logger(namespace="dssr.edge")
INTERNAL_ERROR = b'{"error":"internal error, see the DSSR log"}'


class EdgeRequest(Request):
    """A request whose body is kept in memory and refused (413) once over ``max_body``.

    twisted.web spools bodies over 100 KB to temporary files; DSSR's bodies are
    bounded, so memory is the cheaper place, and nothing is written to disk.
    """

    def gotLength(self, length):
        self.content = BytesIO()

    def handleContentChunk(self, data):
        if self.content.tell() + len(data) > self.channel.limits.max_body:
            self.channel.answer_early(BodyTooLarge(
                f"the request body is larger than {self.channel.limits.max_body} bytes",
                field="args"))
            return
        self.content.write(data)

    def processingFailed(self, reason):
        """A failure outside DSSR's handlers: JSON 500, the traceback in the log only."""
        _log.failure("Bug while serving {path}", reason, path=self.path.decode("latin-1"))
        self.setResponseCode(500)
        self.setHeader(b"Content-Type", b"application/json")
        self.setHeader(b"Content-Length", b"%d" % len(INTERNAL_ERROR))
        self.write(INTERNAL_ERROR)
        self.finish()
        return reason


class EdgeChannel(HeadChannel):
    """An ``HTTPChannel`` with DSSR's admission, deadlines and JSON refusals.

    ``site`` is an ``EdgeSite``: it gives the limits, the reactor and ``admit``.
    """

    peer_host = ""  # the client's address, for the site's per-peer count
    _state = "head"
    _deadline = None
    _answered = False  # an answer with Connection: close went out; the rest is drained
    _drained = 0
    _drains_body = False  # a 413: drained while it keeps coming, not only for ``linger``
    _linger_ends = None  # when draining a refused body ends, whatever the client sends
    _head_lines = 0  # non-empty lines of the current request head
    _head_bytes = 0  # bytes of the current request seen while in ``head``

    @property
    def limits(self):
        """The site's ``EdgeLimits``."""
        return self.site.limits

    def connectionMade(self):
        super().connectionMade()
        self.MAX_LENGTH = self.limits.max_request_line
        self.totalHeadersSize = self.limits.max_header_bytes
        self.maxHeaders = self.limits.max_headers
        self._begin_request()

    def connectionLost(self, reason):
        self._disarm()
        self.site.connection_closed(self)
        super().connectionLost(reason)

    # -- states and deadlines -----------------------------------------------------

    def _arm(self, seconds: float, expired) -> None:
        self._disarm()
        self._deadline = self.site.reactor.callLater(max(0.0, seconds), expired)

    def _disarm(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _begin_request(self) -> None:
        self._state = "head"
        self._started = self.site.reactor.seconds()
        self._head_lines = self._head_bytes = 0
        self._arm(self.site.spread(self.limits.header_timeout), self._head_expired)

    def _head_expired(self) -> None:
        if self._head_bytes == 0:  # nothing asked: just close
            self._close()
        else:
            self.answer_early(RequestTimeout(
                f"the request head took more than {self.limits.header_timeout:g} s"))

    def _body_expired(self) -> None:
        self.answer_early(RequestTimeout(
            f"the request took more than {self.limits.request_timeout:g} s"))

    def _close(self) -> None:
        """Close, and cut the connection if the client does not read what is left."""
        self._state = "closing"
        self.loseConnection()
        self._arm(self.limits.linger, self.transport.abortConnection)

    # -- reading ----------------------------------------------------------------

    def dataReceived(self, data):
        if self._answered:
            self._drained += len(data)
            if self._drained > self.limits.max_drained:
                self._disarm()
                self.transport.abortConnection()
            elif self._drains_body:
                self._linger()
            return
        if self._state == "idle":
            self._begin_request()
        if self._state == "head":
            self._head_bytes += len(data)
        super().dataReceived(data)

    def lineReceived(self, line):
        if self._answered:
            return
        if line:
            self._head_lines += 1
        if self.head_size() + len(line) > self.totalHeadersSize:
            self._answer_too_long()
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line):
        if not self._answered:
            self._answer_too_long(this_line=True)

    def _answer_too_long(self, this_line: bool = False) -> None:
        """414 while the request line is read, 431 once in the headers."""
        if self._head_lines + this_line <= 1:
            self.answer_early(TargetTooLong(
                f"the request line is longer than {self.MAX_LENGTH} bytes"))
        else:
            self.answer_early(HeadersTooLarge(
                f"the request head is larger than {self.totalHeadersSize} bytes or has a "
                f"line longer than {self.MAX_LENGTH}"))

    def headerReceived(self, line):
        if self.header_count() >= self.maxHeaders:
            self.answer_early(HeadersTooLarge(f"more than {self.maxHeaders} header lines"))
            return False
        return super().headerReceived(line)

    def allHeadersReceived(self):
        request = self.requests[-1]
        try:
            check_head(self.request_method(), self.request_target(), request.requestHeaders,
                       self.length, self.limits.max_body, self.site.admit)
        except DSSRError as error:
            self.answer_early(error)
            return
        except Exception:
            _log.failure("Bug while admitting {path}",
                         path=self.request_target().decode("latin-1")[:200])
            self.answer_early(DSSRError("internal error, see the DSSR log"))
            return
        super().allHeadersReceived()
        if self.length != 0:
            self._state = "body"
            elapsed = self.site.reactor.seconds() - self._started
            self._arm(self.limits.request_timeout - elapsed, self._body_expired)

    def rawDataReceived(self, data):
        if not self._answered:
            super().rawDataReceived(data)

    def allContentReceived(self):
        if self._answered:
            return
        self._state = "busy"
        self._disarm()
        super().allContentReceived()

    def requestDone(self, request):
        if self.persistent:
            self._state = "idle"
            self._arm(self.site.spread(self.limits.idle_timeout), self._close)
        else:
            self._state = "closing"
            self._arm(self.limits.idle_timeout, self.transport.abortConnection)
        super().requestDone(request)

    # -- answering before the API does --------------------------------------------

    def malformed(self):
        """twisted.web found the framing malformed: say where, in JSON."""
        if self._state == "body":
            where = "the chunked body is malformed"
        elif self._head_lines <= 1:
            where = "the request line is malformed"
        else:
            where = ("a header is malformed (a bad name, a NUL, a duplicate Content-Length, "
                     "or Content-Length with Transfer-Encoding)")
        self.answer_early(BadRequest(where))

    def answer_early(self, error: DSSRError) -> None:
        """Answer ``error`` now, read nothing more of the request, and close."""
        if self._answered:
            return
        self._answered = True
        self.persistent = False
        self.stop_parsing()
        method = self.request_method()
        self.transport.write(raw_answer(error, with_body=method != b"HEAD"))
        path = self.request_target().split(b"?")[0]  # a query may hold secrets
        self.site.refusals.note(error.status, method.decode("latin-1"),
                                path.decode("latin-1")[:200], error.message)
        self._state = "closing"
        self._drains_body = isinstance(error, BodyTooLarge)
        self._linger()
        announced = self.length if isinstance(error, BodyTooLarge) else None
        if announced is not None and announced > self.limits.max_drained:
            self.loseConnection()  # far over: draining it would end in a reset anyway
        elif not self.isSecure() and ITCPTransport.providedBy(self.transport):
            self.transport.loseWriteConnection()  # the client reads the answer, then closes
        else:
            self.loseConnection()

    def _linger(self) -> None:
        """Cut the refused client off ``linger`` seconds from now, and at the latest
        ``request_timeout`` seconds after the answer."""
        now = self.site.reactor.seconds()
        if self._linger_ends is None:
            self._linger_ends = now + self.limits.request_timeout
        self._arm(min(self.limits.linger, self._linger_ends - now),
                  self.transport.abortConnection)
