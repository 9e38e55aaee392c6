"""The proxy listener: each client connection routed to one job's app and spliced.

A connection's first request names the job (by host or path, ``dssr.proxy.urls``) and
carries its access token, in the URL upstream handed out (then DSSR answers with a
redirect that moves it into a cookie scoped to the job) or in that cookie. The token
is checked against the job's app record and taken out of every request; the bytes
then flow through a forwarded stream to the app (``IConnector.interactive_app``),
with backpressure both ways, until either side closes or the connection idles out.
Responses pass through untouched, so keep-alive and WebSocket upgrades just work. A
later request on the same connection for another job closes it (the browser retries
on a new one).
"""

import hmac
from collections import Counter
from dataclasses import dataclass

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IProtocolNegotiationFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from dssr.proxy.http import (
    BadRequest,
    Head,
    RequestFramer,
    cookie_value,
    error_page,
    without_cookie,
)
from dssr.proxy.urls import JobsURL, split_token, without_token
from dssr.samples import Sample

_log = Logger(namespace="dssr.proxy")


@dataclass(frozen=True)
class ProxyLimits:
    """Streams open at once (in all, per job), and seconds a connection may idle."""

    max_streams: int = 1024
    max_job_streams: int = 256
    idle_timeout: float = 300.0
    resolve_ttl: float = 1.0


def _pass_on(result, waiter: Deferred):
    waiter.callback(result)
    return result


def cookie_name(number: int) -> str:
    """The cookie that carries job ``number``'s access token."""
    return f"dssr_job_{number}"


@implementer(IProtocolNegotiationFactory)
class ProxyFactory(Factory):
    """Client connections for the jobs ``jobs_url`` routes to, reached through
    ``connector.interactive_app``; ``clock`` for the idle timeouts and the lookups'
    short reuse."""

    def __init__(self, jobs_url: JobsURL, connector, clock, limits: ProxyLimits):
        self.jobs_url = jobs_url
        self.limits = limits
        self.clock = clock
        self._connector = connector
        self._lookups: dict[tuple[str, int], tuple[float, Deferred]] = {}
        self.open = Counter()  # open streams by job number
        self.bytes = Counter()  # "in" (to the app), "out"
        self.refused = Counter()  # by reason

    def acceptableProtocols(self) -> list[bytes]:
        """ALPN over TLS: HTTP/1.1, what the proxy reads. (With no protocol named,
        Twisted's TLS refused every client that offers ALPN, as browsers do, with an
        internal error alert.)"""
        return [b"http/1.1"]

    def buildProtocol(self, addr):
        connection = ClientConnection(self)
        connection.callLater = self.clock.callLater
        return connection

    def lookup(self, jobid: str, number: int) -> Deferred:
        """The job's ``InteractiveApp``, None, or the exception the lookup raised;
        shared while fresh (the many connections of one page arrive together)."""
        now = self.clock.seconds()
        key = (jobid, number)
        cached = self._lookups.get(key)
        if cached is None or cached[0] < now:
            for stale in [k for k, (expires, _) in self._lookups.items() if expires < now]:
                del self._lookups[stale]
            found = ensureDeferred(self._app(jobid, number))
            cached = self._lookups[key] = (now + self.limits.resolve_ttl, found)
        waiter: Deferred = Deferred()
        cached[1].addCallback(_pass_on, waiter)
        return waiter

    async def _app(self, jobid: str, number: int):
        try:
            return await self._connector.interactive_app(jobid, number)
        except Exception as error:  # reported to the client as a 502
            return error

    def admit(self, number: int) -> str | None:
        """Why a new stream to job ``number`` must wait, or None to go ahead."""
        if sum(self.open.values()) >= self.limits.max_streams:
            return "the proxy's stream limit is reached"
        if self.open[number] >= self.limits.max_job_streams:
            return "this job's stream limit is reached"
        return None

    def metrics(self):
        """Samples for ``/metrics``: open streams, bytes each way, refusals by reason."""
        yield Sample("dssr_proxy_open_streams", "gauge", "Proxy streams open now",
                     sum(self.open.values()))
        for direction in ("in", "out"):
            yield Sample("dssr_proxy_bytes", "counter", "Bytes through the proxy",
                         self.bytes[direction], {"direction": direction})
        for reason, count in sorted(self.refused.items()):
            yield Sample("dssr_proxy_refused", "counter", "Proxy requests refused",
                         count, {"reason": reason})


class ClientConnection(Protocol, TimeoutMixin):
    """One browser connection: routed by its first request, then spliced to the app."""

    def __init__(self, factory: ProxyFactory):
        self.factory = factory
        self._framer = RequestFramer()
        self._number: int | None = None
        self._pending: list[bytes] = []
        self._upstream: _Upstream | None = None
        self._closed = False

    def connectionMade(self) -> None:
        self.setTimeout(self.factory.limits.idle_timeout)

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        try:
            items = self._framer.feed(data)
        except BadRequest as error:
            self._refuse(400, "Bad Request", str(error), "bad_request")
            return
        for item in items:
            if self._closed:
                return
            if isinstance(item, Head):
                self._request(item)
            else:
                self._send(item)

    def _request(self, head: Head) -> None:
        number = self.factory.jobs_url.number(head.header("host") or "",
                                              head.target.partition("?")[0])
        if self._number is None:
            self._number = number if number is not None else -1
            self.transport.pauseProducing()  # until the job is found and reached
            ensureDeferred(self._route(head, number)).addErrback(self._failed)
            return
        if number != self._number:
            self._abort()  # another job on this connection: the client opens a new one
            return
        self._send(without_cookie(head, cookie_name(number)).encode())

    async def _route(self, head: Head, number: int | None) -> None:
        if number is None:
            self._refuse(404, "Not Found", "no interactive job at this address", "no_route")
            return
        target, from_url = without_token(head.target)
        token = from_url or cookie_value(head, cookie_name(number))
        parts = split_token(token) if token else None
        if parts is None:
            self._refuse(403, "Forbidden", "no valid access token for this job", "token")
            return
        app = await self.factory.lookup(parts[0], number)
        if self._closed:
            return
        if isinstance(app, Exception):
            self._refuse(502, "Bad Gateway", f"DSSR could not look the job up: {app}",
                         "lookup")
            return
        if app is None:
            self._refuse(404, "Not Found", "this job is not running, or its app has not "
                         "started yet", "no_job")
            return
        if not hmac.compare_digest(parts[1].encode(), app.secret.encode()):
            self._refuse(403, "Forbidden", "no valid access token for this job", "token")
            return
        if from_url is not None:
            self._redirect(number, target, token)
            return
        why = self.factory.admit(number)
        if why is not None:
            self._refuse(503, "Service Unavailable", why, "limit")
            return
        self._pending.insert(0, without_cookie(head, cookie_name(number)).encode())
        self.factory.open[number] += 1
        self._upstream = _Upstream(self)
        try:
            await app.endpoint.connect(_UpstreamFactory(self._upstream))
        except Exception as error:  # the stream could not be opened: any reason is a 502
            self._stream_gone()
            if not self._closed:
                self._refuse(502, "Bad Gateway", f"cannot reach the job's app: {error}",
                             "unreachable")
            return

    def _redirect(self, number: int, target: str, token: str) -> None:
        """Move the token from the URL into a cookie scoped to the job."""
        jobs = self.factory.jobs_url
        secure = "; Secure" if jobs.scheme == "https" else ""
        cookie = (f"Set-Cookie: {cookie_name(number)}={token}; Path={jobs.root_path(number)}"
                  f"; HttpOnly; SameSite=Lax{secure}")
        self.transport.write(error_page(302, "Found", "to the job's app",
                                        (f"Location: {target}", cookie)))
        self._close()

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
        self.transport.resumeProducing()

    def upstream_data(self, data: bytes) -> None:
        self.resetTimeout()
        self.factory.bytes["out"] += len(data)
        self.transport.write(data)

    def upstream_lost(self) -> None:
        self._stream_gone()
        self._close()

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
            self.factory.open[self._number] -= 1
            if self.factory.open[self._number] <= 0:
                del self.factory.open[self._number]

    def _refuse(self, code: int, reason: str, message: str, why: str) -> None:
        self.factory.refused[why] += 1
        _log.info("proxy: {code} {why}", code=code, why=why)
        self.transport.write(error_page(code, reason, message))
        self._close()

    def _failed(self, failure) -> None:
        _log.failure("proxy: routing a request failed", failure)
        if not self._closed:
            self._refuse(502, "Bad Gateway", "DSSR could not route the request", "bug")

    def _close(self) -> None:
        self._closed = True
        self.transport.resumeProducing()
        self.transport.loseConnection()

    def _abort(self) -> None:
        self._closed = True
        self.transport.abortConnection()

    def timeoutConnection(self) -> None:
        self.factory.refused["idle"] += 1
        self._abort()

    def connectionLost(self, reason) -> None:
        self._closed = True
        self.setTimeout(None)
        upstream = self._upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.loseConnection()


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
    def __init__(self, upstream: _Upstream):
        self._upstream = upstream

    def buildProtocol(self, addr):
        return self._upstream


def proxy_service(reactor, listen: str, jobs_url: JobsURL, connector,
                  limits: ProxyLimits) -> StreamServerEndpointService:
    """The ``proxy`` service: the proxy to ``connector``'s interactive jobs on ``listen``."""
    factory = ProxyFactory(jobs_url, connector, reactor, limits)
    service = StreamServerEndpointService(serverFromString(reactor, listen), factory)
    service.setName("proxy")
    return service
