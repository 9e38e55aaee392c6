"""The proxy listener: client connections to interactive jobs' apps, within limits.

Connections count against the process's one ``ConnectionBudget`` (shared with the
API listener, so neither can starve the other's accept); each request head has
``header_timeout`` from its first byte; streams are capped in all and per job; and
the jobs with open streams are looked up again every ``recheck_interval`` seconds,
so a job's connections close soon after it ended. What each connection does is
``dssr.proxy.connection``.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocolNegotiationFactory,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from dssr.connectors.interfaces import IConnector
from dssr.edge import listen_description
from dssr.edge.budget import ConnectionBudget
from dssr.edge.limits import EdgeLimits
from dssr.jobs import InteractiveApp
from dssr.listener import Listener
from dssr.proxy.connection import ClientConnection
from dssr.proxy.http import error_page
from dssr.proxy.tokens import AccessTokens
from dssr.proxy.urls import JobsURL
from dssr.samples import Sample

_log = Logger(namespace="dssr.proxy")
T = TypeVar("T")
# What a lookup gives: the app, None, or the exception the connector raised.
Found = InteractiveApp | Exception | None


@dataclass(frozen=True)
class ProxyLimits:
    """Streams open at once (in all, per job), seconds a connection may idle, seconds a
    request head may take from its first byte, and how often open jobs are rechecked."""

    max_streams: int = 1024
    max_job_streams: int = 256
    idle_timeout: float = 300.0
    resolve_ttl: float = 1.0
    header_timeout: float = 10.0
    recheck_interval: float = 5.0


def _pass_on(result: T, waiter: Deferred[T]) -> T:
    waiter.callback(result)
    return result


class _Refusal(Protocol):
    """A connection over the budget: one 503 page, then closed."""

    transport: ITransport  # set before connectionMade

    def __init__(self, budget: ConnectionBudget, reason: str):
        self._budget = budget
        self._page = error_page(503, f"{reason}; try again later")

    def connectionMade(self) -> None:
        self._budget.refusing += 1
        self.transport.write(self._page)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._budget.refusing -= 1


@implementer(IProtocolNegotiationFactory)
class ProxyFactory(Factory):
    """Client connections for the jobs ``jobs_url`` routes to, reached through
    ``connector.interactive_app`` once ``tokens`` vouch for them; ``clock`` for the
    deadlines, the lookups' short reuse and the rechecks; ``budget`` the process's
    connection budget (by default one of its own, with the API's default caps)."""

    def __init__(self, jobs_url: JobsURL, connector: IConnector, clock: IReactorTime,
                 limits: ProxyLimits,
                 tokens: AccessTokens, budget: ConnectionBudget | None = None):
        self.jobs_url = jobs_url
        self.limits = limits
        self.clock = clock
        self.tokens = tokens
        self.budget = budget or ConnectionBudget.from_limits(EdgeLimits())
        self._connector = connector
        self._lookups: dict[tuple[str, int], tuple[float, Deferred[Found]]] = {}
        self._streams: dict[tuple[str, int], set[ClientConnection]] = {}
        self._recheck: IDelayedCall | None = None
        self.open: Counter[int] = Counter()  # open streams by job number
        self.bytes: Counter[str] = Counter()  # "in" (to the app), "out"
        self.refused: Counter[str] = Counter()  # by reason

    def acceptableProtocols(self) -> list[bytes]:
        """ALPN over TLS: HTTP/1.1, what the proxy reads. (With no protocol named,
        Twisted's TLS refused every client that offers ALPN, as browsers do, with an
        internal error alert.)"""
        return [b"http/1.1"]

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        peer = getattr(addr, "host", "")
        reason = self.budget.take(peer)
        if reason is not None:
            self.refused["connections"] += 1
            return _Refusal(self.budget, reason) if self.budget.may_answer_refusal() else None
        connection = ClientConnection(self, peer)
        # TimeoutMixin's hook for its clock: an attribute Twisted declares as a method.
        connection.callLater = self.clock.callLater  # type: ignore[method-assign,assignment]
        return connection

    def lookup(self, jobid: str, number: int) -> Deferred[Found]:
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
        waiter: Deferred[Found] = Deferred()
        cached[1].addCallback(_pass_on, waiter)
        return waiter

    async def _app(self, jobid: str, number: int) -> Found:
        try:
            return await self._connector.interactive_app(jobid, number)
        except Exception as error:  # logged by the connection, a generic 502 for the client
            return error

    def admit(self, number: int) -> str | None:
        """Why a new stream to job ``number`` must wait, or None to go ahead."""
        if sum(self.open.values()) >= self.limits.max_streams:
            return "the proxy's stream limit is reached"
        if self.open[number] >= self.limits.max_job_streams:
            return "this job's stream limit is reached"
        return None

    # -- closing the streams of jobs that ended ---------------------------------------

    def track(self, connection: ClientConnection) -> None:
        """``connection`` has a stream to its job's app: recheck that job while it does."""
        assert connection.job is not None  # a stream is to the connection's job
        self._streams.setdefault(connection.job, set()).add(connection)
        if self._recheck is None:
            self._recheck = self.clock.callLater(self.limits.recheck_interval, self._check)

    def untrack(self, connection: ClientConnection) -> None:
        assert connection.job is not None  # tracked: it has a stream to its job
        connections = self._streams.get(connection.job, set())
        connections.discard(connection)
        if not connections:
            self._streams.pop(connection.job, None)

    def _check(self) -> None:
        """Look every job with open streams up again; close those of jobs gone."""
        self._recheck = None
        for job in list(self._streams):
            self.lookup(*job).addCallback(self._close_if_gone, job)
        if self._streams:
            self._recheck = self.clock.callLater(self.limits.recheck_interval, self._check)

    def _close_if_gone(self, app: Found, job: tuple[str, int]) -> None:
        if app is None:  # a failed lookup (an exception) says nothing: try again later
            for connection in list(self._streams.get(job, ())):
                connection.job_ended()

    def stopFactory(self) -> None:
        if self._recheck is not None and self._recheck.active():
            self._recheck.cancel()
        self._recheck = None

    def metrics(self) -> Iterator[Sample]:
        """Samples for ``/metrics``: open streams, bytes each way, refusals by reason."""
        yield Sample("dssr_proxy_open_streams", "gauge", "Proxy streams open now",
                     sum(self.open.values()))
        for direction in ("in", "out"):
            yield Sample("dssr_proxy_bytes", "counter", "Bytes through the proxy",
                         self.bytes[direction], {"direction": direction})
        for reason, count in sorted(self.refused.items()):
            yield Sample("dssr_proxy_refused", "counter", "Proxy requests refused",
                         count, {"reason": reason})


def proxy_service(reactor: Any, listen: str, jobs_url: JobsURL, connector: IConnector,
                  limits: ProxyLimits, tokens: AccessTokens,
                  budget: ConnectionBudget | None = None) -> Listener["ProxyFactory"]:
    """The ``proxy`` service: the proxy to ``connector``'s interactive jobs on ``listen``
    (with the API's listen backlog), within ``budget``."""
    factory = ProxyFactory(jobs_url, connector, reactor, limits, tokens, budget)
    endpoint = serverFromString(reactor, listen_description(listen))
    service = Listener(endpoint, factory, "the proxy", "proxy_listen", listen)
    service.setName("proxy")
    return service
