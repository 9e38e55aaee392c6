"""The dummy connector's pretend interactive app: a tiny page served in this process.

An interactive dummy job "runs" it while it is running: DSSR's proxy reaches it
through a plain TCP endpoint on 127.0.0.1, so ``twistd -n dssr`` with
``dummy_interactive``, ``jobs_domain`` and ``proxy_listen`` shows the whole flow
(``info`` URL, token, cookie, splice) without a cluster.
"""

import html
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.tcp import Port
from twisted.web.resource import Resource
from twisted.web.server import Request, Site


class _Page(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        path = html.escape(request.path.decode("utf-8", "replace"))
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return (f"<!doctype html><title>DSSR dummy app</title><h1>A dummy interactive "
                f"job</h1><p>Served by DSSR's dummy connector through DSSR's proxy; "
                f"you asked for <code>{path}</code>.</p>").encode()


class PretendApp:
    """The page every running interactive dummy job serves, listening on first use."""

    def __init__(self, reactor: Any):  # IReactorTCP and what HostnameEndpoint needs
        self._reactor = reactor
        self._port: Port | None = None

    def endpoint(self) -> HostnameEndpoint:
        """A client endpoint to the page."""
        if self._port is None:
            self._port = self._reactor.listenTCP(0, Site(_Page()), interface="127.0.0.1")
        return HostnameEndpoint(self._reactor, "127.0.0.1", self._port.getHost().port)

    def stop(self) -> Deferred[None] | None:
        """Stop listening (a Deferred, or None when it never listened)."""
        port, self._port = self._port, None
        return port.stopListening() if port is not None else None
