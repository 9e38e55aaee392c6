"""One connection budget for every listener of the process (the API and the proxy), so
that neither can take the descriptors the other needs to accept."""

from twisted.logger import Logger

from dssr.edge.limits import EdgeLimits

_log = Logger(namespace="dssr.edge")
MAX_REFUSING = 64  # refused connections holding a descriptor at once (for their 503)


class ConnectionBudget:
    """At most ``cap`` connections open at once over all listeners, ``per_peer`` of
    them from one client address (``fd_limit``: the file limit the cap was kept under,
    None if not checked); ``refusing`` counts refusals still being written."""

    def __init__(self, cap: int, per_peer: int, fd_limit: int | None = None):
        self.cap = cap
        self.per_peer = per_peer
        self.fd_limit = fd_limit
        self.open = 0
        self.by_peer: dict[str, int] = {}
        self.refusing = 0
        self._refusing: set[str] = set()  # what is at its cap, logged once until it frees

    @classmethod
    def from_limits(cls, limits: EdgeLimits, fd_limit: int | None = None) -> "ConnectionBudget":
        """The budget ``limits`` set, kept below the file limit ``fd_limit`` when known."""
        cap = limits.max_connections if fd_limit is None else limits.connection_cap(fd_limit)
        return cls(cap, limits.max_connections_per_peer, fd_limit)

    def take(self, host: str) -> str | None:
        """Count a connection from ``host`` in and None, or why it cannot be served."""
        if self.open >= self.cap:
            return self._refuse("", f"DSSR is serving its maximum of {self.cap} connections")
        if self.by_peer.get(host, 0) >= self.per_peer:
            return self._refuse(host, f"this address has {self.per_peer} connections open")
        self.open += 1
        self.by_peer[host] = self.by_peer.get(host, 0) + 1
        return None

    def give_back(self, host: str) -> None:
        """Count out a connection ``take`` let in (once, when it is lost)."""
        self.open -= 1
        self.by_peer[host] -= 1
        if not self.by_peer[host]:
            del self.by_peer[host]
        for key in (host, ""):
            if key in self._refusing:
                self._refusing.discard(key)
                _log.info("connections from {who} accepted again", who=key or "anyone")

    def may_answer_refusal(self) -> bool:
        """Whether a refused connection may still get its answer; under a flood of them
        it is closed at once, so refusals cannot take the descriptors the cap keeps free."""
        return self.refusing < MAX_REFUSING

    def _refuse(self, key: str, reason: str) -> str:
        if key not in self._refusing:
            self._refusing.add(key)
            _log.warn("refusing connections from {who}: {reason}", who=key or "anyone",
                      reason=reason)
        return reason
