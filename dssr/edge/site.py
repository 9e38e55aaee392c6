"""The Site: connection caps, and the one place the API's ``admit`` is handed to
every connection."""

import random

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.server import Site

from dssr.edge.answers import raw_answer
from dssr.edge.channel import EdgeChannel, EdgeRequest
from dssr.edge.limits import EdgeLimits
from dssr.edge.refusals import RefusalLog
from dssr.errors import Unavailable

_log = Logger(namespace="dssr.edge")
MAX_REFUSING = 64  # refused connections holding a descriptor at once (for their 503)


class Refusal(Protocol):
    """A connection over a cap: one 503 JSON answer, then closed."""

    def __init__(self, site: "EdgeSite", error: Unavailable):
        self._site = site
        self._answer = raw_answer(error)

    def connectionMade(self):
        self._site.refusing += 1
        self.transport.write(self._answer)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self._site.refusing -= 1


class EdgeSite(Site):
    """Serves ``api`` through ``EdgeChannel``s, at most ``limits.max_connections``
    connections at once (fewer if ``fd_limit``, the process's file limit, needs) and
    ``limits.max_connections_per_peer`` from one client address.

    ``api`` provides ``admit(method, path, headers)`` and ``admitted_resource()``
    (``dssr.api.DSSRApi``): every request is admitted by its channel before it is
    served.
    """

    protocol = EdgeChannel
    requestFactory = EdgeRequest
    displayTracebacks = False

    def __init__(self, api, limits: EdgeLimits, reactor=None, fd_limit: int | None = None):
        super().__init__(api.admitted_resource(), timeout=None, reactor=reactor,
                         parsePOSTFormSubmission=False)
        self.admit = api.admit
        self.limits = limits
        self.fd_limit = fd_limit
        self.cap = limits.max_connections if fd_limit is None else limits.connection_cap(fd_limit)
        self.open = 0
        self.refusing = 0
        self.by_peer: dict[str, int] = {}
        self._refusing: set[str] = set()  # what is at its cap, logged once until it frees
        self.refusals = RefusalLog(self.reactor)
        self.random = random.Random()  # noqa: S311 - timer jitter, not a secret

    def spread(self, seconds: float) -> float:
        """``seconds``, up to ``limits.deadline_spread`` of it later (see there)."""
        return seconds * (1 + self.limits.deadline_spread * self.random.random())

    def log(self, request):
        """No access log: ``dssr.api`` logs every call itself, with more detail."""

    def buildProtocol(self, addr):
        host = getattr(addr, "host", "")
        if self.open >= self.cap:
            return self._refuse("", f"DSSR is serving its maximum of {self.cap} connections")
        if self.by_peer.get(host, 0) >= self.limits.max_connections_per_peer:
            return self._refuse(host, f"this address has "
                                f"{self.limits.max_connections_per_peer} connections open")
        channel = super().buildProtocol(addr)
        channel.peer_host = host
        self.open += 1
        self.by_peer[host] = self.by_peer.get(host, 0) + 1
        return channel

    def connection_closed(self, channel: EdgeChannel) -> None:
        """Count ``channel`` out (it calls this once, when it is lost)."""
        host = channel.peer_host
        self.open -= 1
        self.by_peer[host] -= 1
        if not self.by_peer[host]:
            del self.by_peer[host]
        for key in (host, ""):
            if key in self._refusing:
                self._refusing.discard(key)
                _log.info("connections from {who} accepted again", who=key or "anyone")

    def _refuse(self, key: str, reason: str) -> Refusal | None:
        """A 503 for a connection over a cap; under a flood of them (more than
        ``MAX_REFUSING`` still sending theirs), None: Twisted closes it at once, so
        refusals cannot take the descriptors the cap keeps free."""
        if key not in self._refusing:
            self._refusing.add(key)
            _log.warn("refusing connections from {who}: {reason}", who=key or "anyone",
                      reason=reason)
        if self.refusing >= MAX_REFUSING:
            return None
        return Refusal(self, Unavailable(f"{reason}; try again later"))

    def stopFactory(self):
        self.refusals.stop()
        super().stopFactory()

    def startFactory(self):
        super().startFactory()
        limits = self.limits
        _log.info(
            "HTTP edge: at most {cap} connections (file limit {fd_limit}), {per_peer} per "
            "client address; bodies up to {max_body} bytes; {header:g} s for a request "
            "head, {request:g} s for a whole request; keep-alive connections idle at most "
            "{idle:g} s", cap=self.cap, fd_limit=self.fd_limit or "not checked",
            per_peer=limits.max_connections_per_peer, max_body=limits.max_body,
            header=limits.header_timeout, request=limits.request_timeout,
            idle=limits.idle_timeout)
