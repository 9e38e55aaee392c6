"""One browser connection to the proxy: every request checked, then spliced to the app.

Each request names the job (by host or path, ``dssr.proxy.urls``) and carries its
access token, in the URL upstream handed out or in the cookie the proxy set. The
token is checked first (an HMAC, no cluster work); the first request then finds the
app (``IConnector.interactive_app``) and opens a stream to it. Every later request
must be for the same job with a valid token too; the token leaves the URL and the
cookie before the app sees the request. A token in a URL is answered with a redirect
that moves it into a cookie scoped to the job, on the job's own origin. The app's
responses pass through untouched while ``ResponseFramer`` follows where each ends;
only its ``101`` to an upgrade request makes the connection raw both ways.

Unauthenticated clients learn nothing: every request without a valid token gets the
same 403, whether or not the job exists; lookups and connection failures are logged
here, with the path and the client's address, and answered with a generic page.
"""

from dataclasses import replace

from twisted.internet.defer import ensureDeferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from dssr.proxy.heads import BadRequest, Head, cookie_value, without_cookie
from dssr.proxy.http import RequestFramer, error_page
from dssr.proxy.responses import BadResponse, ResponseFramer
from dssr.proxy.urls import without_token

_log = Logger(namespace="dssr.proxy")
NO_TOKEN = "no valid access token for this address"  # noqa: S105 (a message)
UNREACHABLE = "the job's app cannot be reached right now; try again later"


def cookie_name(number: int) -> str:
    """The cookie that carries job ``number``'s access token."""
    return f"dssr_job_{number}"


class ClientConnection(Protocol, TimeoutMixin):
    """One client connection from ``peer`` (its address), for the one job of its first
    request; ``factory`` is the ``ProxyFactory``."""

    def __init__(self, factory, peer: str):
        self.factory = factory
        self.peer = peer
        self.job: tuple[str, int] | None = None  # (jobid, number) once the first request named it
        self._requests = RequestFramer()
        self._responses = ResponseFramer()
        self._pending: list[bytes] = []  # for the app, until its stream is open
        self._upstream: _Upstream | None = None
        self._redirect: bytes | None = None  # answered once the app answered what came before
        self._head_deadline = None
        self._closed = False

    def connectionMade(self) -> None:
        self.setTimeout(self.factory.limits.idle_timeout)
        self._arm_head_deadline()

    def dataReceived(self, data: bytes) -> None:
        if self._closed or self._redirect is not None:
            return
        self.resetTimeout()
        try:
            items = self._requests.feed(data)
        except BadRequest as error:
            self._refuse(error.status, str(error), "bad_request")
            return
        self._handle(items)

    def _handle(self, items: list) -> None:
        for item in items:
            if self._closed or self._redirect is not None:
                return
            if isinstance(item, Head):
                self._request(item)
            else:
                self._send(item)
        if self._requests.head_pending():
            self._arm_head_deadline()
        else:
            self._disarm_head_deadline()

    # -- each request ---------------------------------------------------------------

    def _request(self, head: Head) -> None:
        path = head.target.partition("?")[0]
        number = self.factory.jobs_url.number(head.header("host") or "", path)
        target, from_url = without_token(head.target)
        jobid = None
        if number is not None:
            token = from_url or cookie_value(head, cookie_name(number))
            jobid = self.factory.tokens.verify(token, number) if token else None
        if self.job is None:
            if number is None:
                self._refuse(404, "no interactive job at this address", "no_route", path)
            elif jobid is None:
                self._refuse(403, NO_TOKEN, "token", path)
            elif from_url is not None:
                self._redirect_to(number, target, token)
            else:
                self.job = (jobid, number)
                self._forward(head, target)
                self.transport.pauseProducing()  # until the app is found and reached
                ensureDeferred(self._route(path)).addErrback(self._failed)
            return
        if (jobid, number) != self.job:
            self._abort()  # another job, or no valid token: the browser asks on a new one
        elif from_url is not None:
            self._redirect_to(number, target, token)
        else:
            self._forward(head, target)

    def _forward(self, head: Head, target: str) -> None:
        """Pass ``head`` on without the token, and expect the app's answer to it."""
        self._responses.expect(head.method, head.upgrade())
        stripped = without_cookie(replace(head, target=target), cookie_name(self.job[1]))
        self._send(stripped.encode())

    async def _route(self, path: str) -> None:
        jobid, number = self.job
        app = await self.factory.lookup(jobid, number)
        if self._closed:
            return
        if isinstance(app, Exception):
            self._refuse(502, UNREACHABLE, "lookup", path, app)
            return
        if app is None:
            self._refuse(404, "this job is not running, or its app has not started yet",
                         "no_job", path)
            return
        why = self.factory.admit(number)
        if why is not None:
            self._refuse(503, why, "limit", path)
            return
        self.factory.open[number] += 1
        self._upstream = _Upstream(self)
        self.factory.track(self)
        try:
            await app.endpoint.connect(_UpstreamFactory(self._upstream))
        except Exception as error:  # the stream could not be opened: any reason is a 502
            self._stream_gone()
            if not self._closed:
                self._refuse(502, UNREACHABLE, "unreachable", path, error)

    def _redirect_to(self, number: int, target: str, token: str) -> None:
        """Move the token from the URL into a cookie scoped to the job, sending the
        browser to the same path on the job's own origin (an absolute URL, so no
        target reads as another host); after the app's pending answers, if any."""
        jobs = self.factory.jobs_url
        secure = "; Secure" if jobs.scheme == "https" else ""
        cookie = (f"Set-Cookie: {cookie_name(number)}={token}; Path={jobs.root_path(number)}"
                  f"; HttpOnly; SameSite=Lax{secure}")
        location = f"Location: {jobs.scheme}://{jobs.root_host(number)}{target}"
        self._redirect = error_page(302, "to the job's app", (location, cookie))
        self.transport.pauseProducing()
        self._redirect_if_answered()

    def _redirect_if_answered(self) -> None:
        if self._redirect is not None and self._responses.idle() and not self._closed:
            self.transport.write(self._redirect)
            self._close()

    # -- the app's side ---------------------------------------------------------------

    def upstream_connected(self, upstream) -> None:
        """The stream is open: pass on what arrived meanwhile, couple the flow control."""
        if self._closed:
            upstream.transport.loseConnection()
            return
        pending, self._pending = self._pending, []
        for data in pending:
            upstream.transport.write(data)
            self.factory.bytes["in"] += len(data)
        self.transport.registerProducer(upstream.transport, True)
        upstream.transport.registerProducer(self.transport, True)
        if self._redirect is None:
            self.transport.resumeProducing()

    def upstream_data(self, data: bytes) -> None:
        if self._closed:
            return
        self.resetTimeout()
        try:
            upgraded = self._responses.feed(data)
        except BadResponse as error:
            _log.info("proxy: job {number}'s app sent a bad response ({error}); closing",
                      number=self.job[1], error=error)
            self.factory.refused["bad_response"] += 1
            self._abort()
            return
        self.factory.bytes["out"] += len(data)
        self.transport.write(data)
        if upgraded is not None:
            self._handle(self._requests.upgrade_answered(upgraded))
        self._redirect_if_answered()

    def upstream_lost(self) -> None:
        self._stream_gone()
        if not self._closed:
            self._close()

    def job_ended(self) -> None:
        """The job's app is gone: this connection goes too."""
        self.factory.refused["job_ended"] += 1
        self._abort()

    def _send(self, data: bytes) -> None:
        upstream = self._upstream
        if upstream is None or upstream.transport is None:
            self._pending.append(data)
            return
        self.factory.bytes["in"] += len(data)
        upstream.transport.write(data)

    def _stream_gone(self) -> None:
        if self._upstream is not None and not self._upstream.counted_out:
            self._upstream.counted_out = True
            self.factory.untrack(self)
            number = self.job[1]
            self.factory.open[number] -= 1
            if self.factory.open[number] <= 0:
                del self.factory.open[number]

    # -- deadlines, refusals, the end -----------------------------------------------

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.factory.clock.callLater(
                self.factory.limits.header_timeout, self._head_expired)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None and self._head_deadline.active():
            self._head_deadline.cancel()
        self._head_deadline = None

    def _head_expired(self) -> None:
        self._head_deadline = None
        if self._requests.head_pending():
            self._refuse(408, f"the request head took more than "
                         f"{self.factory.limits.header_timeout:g} s", "head_timeout")
        else:  # nothing asked yet: just close
            self.factory.refused["head_timeout"] += 1
            self._close()

    def _refuse(self, code: int, message: str, why: str, path: str = "",
                detail: object = None) -> None:
        """Answer ``code`` with ``message`` (DSSR's own words) and close; the reason
        and ``detail`` go to the log only, with the path and the client's address."""
        self.factory.refused[why] += 1
        _log.info("proxy: {code} ({why}) for {path} from {peer}{detail}", code=code, why=why,
                  path=path[:200] or "-", peer=self.peer,
                  detail=f": {detail}" if detail is not None else "")
        self.transport.write(error_page(code, message))
        self._close()

    def _failed(self, failure) -> None:
        _log.failure("proxy: routing a request failed", failure)
        if not self._closed:
            self._refuse(502, UNREACHABLE, "bug")

    def _close(self) -> None:
        self._closed = True
        self._disarm_head_deadline()
        self.transport.resumeProducing()
        self.transport.loseConnection()

    def _abort(self) -> None:
        """Cut the connection and its stream at once."""
        self._closed = True
        self._disarm_head_deadline()
        self.transport.abortConnection()
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.loseConnection()

    def timeoutConnection(self) -> None:
        self.factory.refused["idle"] += 1
        self._abort()

    def connectionLost(self, reason) -> None:
        self._closed = True
        self.setTimeout(None)
        self._disarm_head_deadline()
        self.factory.budget.give_back(self.peer)
        upstream = self._upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.loseConnection()
        elif upstream is not None:
            self._stream_gone()


class _Upstream(Protocol):
    """The app's side of one client connection."""

    def __init__(self, client: ClientConnection):
        self.client = client
        self.counted_out = False

    def connectionMade(self) -> None:
        self.client.upstream_connected(self)

    def dataReceived(self, data: bytes) -> None:
        self.client.upstream_data(data)

    def connectionLost(self, reason) -> None:
        self.client.upstream_lost()


class _UpstreamFactory(Factory):
    noisy = False  # one per proxied connection: no "Starting factory" line each

    def __init__(self, upstream: _Upstream):
        self._upstream = upstream

    def buildProtocol(self, addr):
        return self._upstream
