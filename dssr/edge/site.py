"""The Site: connection caps, and the one place the API's ``admit`` is handed to
every connection."""

import random

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.server import Site

from dssr.edge.answers import raw_answer
from dssr.edge.budget import ConnectionBudget
from dssr.edge.channel import EdgeChannel, EdgeRequest
from dssr.edge.limits import EdgeLimits
from dssr.edge.refusals import RefusalLog
from dssr.errors import Unavailable

_log = Logger(namespace="dssr.edge")


class Refusal(Protocol):
    """A connection over a cap: one 503 JSON answer, then closed."""

    def __init__(self, site: "EdgeSite", error: Unavailable):
        self._site = site
        self._answer = raw_answer(error)

    def connectionMade(self):
        self._site.budget.refusing += 1
        self.transport.write(self._answer)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self._site.budget.refusing -= 1


class EdgeSite(Site):
    """Serves ``api`` through ``EdgeChannel``s within ``budget`` (shared with the
    proxy's listener), by default ``limits.max_connections`` connections at once
    (fewer if ``fd_limit``, the process's file limit, needs) and
    ``limits.max_connections_per_peer`` from one client address.

    ``api`` provides ``admit(method, path, headers)`` and ``admitted_resource()``
    (``dssr.api.DSSRApi``): every request is admitted by its channel before it is
    served.
    """

    protocol = EdgeChannel
    requestFactory = EdgeRequest
    displayTracebacks = False

    def __init__(self, api, limits: EdgeLimits, reactor=None, fd_limit: int | None = None,
                 budget: ConnectionBudget | None = None):
        super().__init__(api.admitted_resource(), timeout=None, reactor=reactor,
                         parsePOSTFormSubmission=False)
        self.admit = api.admit
        self.limits = limits
        self.budget = budget or ConnectionBudget.from_limits(limits, fd_limit)
        self.refusals = RefusalLog(self.reactor)
        self.random = random.Random()  # noqa: S311 - timer jitter, not a secret

    def spread(self, seconds: float) -> float:
        """``seconds``, a random part of ``limits.deadline_spread`` of it (at least
        ``limits.min_deadline_spread``) later: see there."""
        window = max(seconds * self.limits.deadline_spread, self.limits.min_deadline_spread)
        return seconds + window * self.random.random()

    def log(self, request):
        """No access log: ``dssr.api`` logs every call itself, with more detail."""

    @property
    def cap(self) -> int:
        return self.budget.cap

    @property
    def open(self) -> int:
        return self.budget.open

    @property
    def by_peer(self) -> dict[str, int]:
        return self.budget.by_peer

    def buildProtocol(self, addr):
        host = getattr(addr, "host", "")
        reason = self.budget.take(host)
        if reason is not None:
            return self._refuse(reason)
        channel = super().buildProtocol(addr)
        channel.peer_host = host
        return channel

    def connection_closed(self, channel: EdgeChannel) -> None:
        """Count ``channel`` out (it calls this once, when it is lost)."""
        self.budget.give_back(channel.peer_host)

    def _refuse(self, reason: str) -> Refusal | None:
        """A 503 for a connection over a cap; under a flood of them, None: Twisted
        closes it at once (``ConnectionBudget.may_answer_refusal``)."""
        if not self.budget.may_answer_refusal():
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
            "{idle:g} s", cap=self.cap, fd_limit=self.budget.fd_limit or "not checked",
            per_peer=self.budget.per_peer, max_body=limits.max_body,
            header=limits.header_timeout, request=limits.request_timeout,
            idle=limits.idle_timeout)
