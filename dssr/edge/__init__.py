"""DSSR's HTTP edge: everything between a socket and the API.

Requests are decided on from their head (path, method, credentials, announced
length) before any body is read; bodies are bounded and kept in memory; every phase
of a connection has a deadline; connections are capped in total and per client
address; every answer the edge writes itself is JSON.
"""

from twisted.internet import endpoints

from dssr.edge.budget import ConnectionBudget
from dssr.edge.limits import EdgeLimits, raise_fd_limit
from dssr.edge.site import EdgeSite
from dssr.listener import Listener

__all__ = ["ConnectionBudget", "EdgeLimits", "EdgeSite", "http_service", "listen_description",
           "make_site", "shared_budget"]

BACKLOG = 1024  # connections the kernel holds for accept(); Twisted's default is 50


def make_site(api, limits: EdgeLimits | None = None, reactor=None) -> EdgeSite:
    """A Site serving ``api`` (a ``DSSRApi``) within ``limits`` (default: the settings'
    defaults), for tests and embedding; ``http_service`` is what ``twistd dssr`` runs."""
    return EdgeSite(api, EdgeLimits() if limits is None else limits, reactor)


def listen_description(listen: str) -> str:
    """``listen`` with a listen backlog of ``BACKLOG`` unless it names one.

    With 50, a burst of connections (an attack, or many clients at once) fills the
    kernel's accept queue and every further client waits a second per SYN retry.
    """
    if listen.split(":", 1)[0] in ("tcp", "tcp6", "ssl", "unix") and "backlog=" not in listen:
        return f"{listen}:backlog={BACKLOG}"
    return listen


def shared_budget(limits: EdgeLimits) -> ConnectionBudget:
    """The process's one connection budget (for the API and the proxy listener), under
    its file limit once that is raised as far as allowed."""
    return ConnectionBudget.from_limits(limits, raise_fd_limit())


def http_service(reactor, listen: str, api, limits: EdgeLimits,
                 budget: ConnectionBudget | None = None) -> Listener:
    """The ``http`` service: ``api`` on the endpoint ``listen`` within ``budget``
    (by default one of its own, under the raised file limit)."""
    site = EdgeSite(api, limits, reactor, budget=budget or shared_budget(limits))
    endpoint = endpoints.serverFromString(reactor, listen_description(listen))
    service = Listener(endpoint, site, "the Jarvice API", "listen", listen)
    service.setName("http")
    return service
