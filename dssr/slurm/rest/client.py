"""JSON requests to slurmrestd, non-blocking, each within a deadline.

Requests go through a ``twisted.web.client.Agent`` handed in (``agent()`` builds the
usual one: a persistent connection pool, a connect timeout, TLS checked against a CA
file when asked, and any endpoint factory: a direct TCP connection, or a channel
through DSSR's SSH connection). A request that cannot be made or answered in time is
``Unavailable``; headers carry the token and are never logged or put in an error.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.endpoints import wrapClientTLS
from twisted.internet.error import ConnectError, ConnectingCancelledError
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.ssl import Certificate
from twisted.web.client import (
    URI,
    Agent,
    BrowserLikePolicyForHTTPS,
    HTTPConnectionPool,
    ResponseFailed,
    readBody,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IAgentEndpointFactory
from zope.interface import implementer

from dssr.errors import Unavailable
from dssr.producers import BytesProducer
from dssr.remote.interfaces import IRemote, RemoteError
from dssr.samples import Sample
from dssr.slurm.rest.offload import JobsReader

# Failures of the connection or of the exchange itself: slurmrestd is not there.
SOCKET_SCHEME = "unix:"
# The URL of requests over a unix socket: slurmrestd reads only its path.
SOCKET_BASE = "http://localhost"
NO_ANSWER = (ConnectError, ConnectingCancelledError, CancelledError, TimeoutError,
             ResponseFailed, ConnectionError, RemoteError)


@dataclass(frozen=True)
class Answer:
    """What slurmrestd answered: the HTTP status, and its JSON document (None if the body
    was not JSON; then ``text`` has its first line)."""

    status: int
    document: dict[str, Any] | None
    text: str = ""


def agent(reactor: Any, connect_timeout: float, ca_file_pem: bytes | None = None,
          endpoints: IAgentEndpointFactory | None = None,
          pool: HTTPConnectionPool | None = None) -> Agent:
    """The Agent requests go through: ``endpoints`` (an ``IAgentEndpointFactory``) when
    given, else TCP (and TLS checked against ``ca_file_pem`` when given)."""
    pool = pool or HTTPConnectionPool(reactor, persistent=True)
    if endpoints is not None:
        through: Agent = Agent.usingEndpointFactory(reactor, endpoints, pool=pool)
        return through
    policy = BrowserLikePolicyForHTTPS(
        trustRoot=Certificate.loadPEM(ca_file_pem) if ca_file_pem else None)
    return Agent(reactor, contextFactory=policy, connectTimeout=connect_timeout, pool=pool)


@implementer(IAgentEndpointFactory)
class ThroughRemote:
    """Connections to slurmrestd made by the login node: each one a stream through
    ``remote`` (``IRemote.tcp_endpoint``, a ``direct-tcpip`` channel on DSSR's SSH
    connection), so slurmrestd may listen on the login node's loopback only. TLS, for
    an https URL, runs inside the stream (checked against ``ca_file_pem`` if given)."""

    def __init__(self, remote: IRemote, ca_file_pem: bytes | None = None):
        self._remote = remote
        self._policy = BrowserLikePolicyForHTTPS(
            trustRoot=Certificate.loadPEM(ca_file_pem) if ca_file_pem else None)

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        host = uri.host.decode("ascii")
        endpoint = self._remote.tcp_endpoint(host, uri.port)
        if uri.scheme == b"https":
            endpoint = wrapClientTLS(self._policy.creatorForNetloc(uri.host, uri.port),
                                     endpoint)
        return endpoint


@implementer(IAgentEndpointFactory)
class ToSocket:
    """Every connection to slurmrestd goes to its unix socket: ``connect()`` gives the
    endpoint (through the login node, ``IRemote.unix_endpoint``: a
    ``direct-streamlocal`` channel; or a unix socket on DSSR's own host)."""

    def __init__(self, connect: Callable[[], IStreamClientEndpoint]):
        self._connect = connect

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        return self._connect()


def socket_path(address: str) -> str | None:
    """The unix socket ``JARVICE_SLURMRESTD_ADDR`` names as ``unix:/path`` (slurmrestd's
    own listen syntax), else None. ValueError for a path that is not absolute."""
    if not address.startswith(SOCKET_SCHEME):
        return None
    path = address[len(SOCKET_SCHEME):]
    if not path.startswith("/") or "\0" in path:
        raise ValueError("a unix socket must be an absolute path, e.g. "
                         "unix:/run/slurmrestd/slurmrestd.socket")
    return path


def base_url(address: str, port: int) -> str:
    """``JARVICE_SLURMRESTD_ADDR`` (``http://login1``; a bare host means http) with the
    port: ``http://login1:6820``; for a unix socket, the URL requests name (its Host).
    ValueError for anything else."""
    if socket_path(address) is not None:
        return SOCKET_BASE
    url = urlsplit(address if "://" in address else "http://" + address)
    if url.scheme not in ("http", "https") or not url.hostname or url.path.strip("/") \
            or url.query or url.fragment or url.username or url.password:
        raise ValueError("must be http://host or https://host (the port goes in "
                         "JARVICE_SLURMRESTD_PORT), or unix:/path for a unix socket")
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    return f"{url.scheme}://{host}:{url.port or port}"


def location(address: str, port: int) -> str:
    """Where slurmrestd is, for people, as set: ``unix:/path``, or the address and port."""
    return address if address.startswith(SOCKET_SCHEME) else f"{address} port {port}"


def _first_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[0][:200] if lines else ""


class RestClient:
    """JSON requests to the slurmrestd at ``base`` (``base_url``), each answered within
    ``timeout`` seconds of ``clock`` or ``Unavailable``."""

    def __init__(self, agent: IAgent, base: str, clock: IReactorTime, timeout: float,
                 pool: HTTPConnectionPool | None = None,
                 where: str | None = None, jobs_reader: JobsReader | None = None):
        self._agent = agent
        self._pool = pool
        self._jobs_reader = jobs_reader
        self.base = base
        self.where = where or base  # where slurmrestd is, in messages
        self._clock = clock
        self._timeout = timeout
        self.requests = 0
        self.failures = 0
        self.last_failure: str | None = None

    async def request(self, method: str, path: str, user: str, token: str,
                      body: dict[str, Any] | None = None, listing: bool = False) -> Answer:
        """``method`` ``path`` as ``user`` with ``token``; the answer, whatever its status.
        A large ``listing`` of jobs is read by the jobs reader, when there is one: only
        the Jarvice jobs, and only what DSSR reads of them, are in its document."""
        headers = Headers({"X-SLURM-USER-NAME": [user], "X-SLURM-USER-TOKEN": [token],
                           "Accept": ["application/json"]})
        producer = None
        if body is not None:
            headers.setRawHeaders("Content-Type", ["application/json"])
            producer = BytesProducer(json.dumps(body).encode("utf-8"))
        self.requests += 1
        try:
            response = await self._agent.request(
                method.encode("ascii"), (self.base + path).encode("ascii"), headers, producer
            ).addTimeout(self._timeout, self._clock)
            data = await readBody(response).addTimeout(self._timeout, self._clock)
        except NO_ANSWER as error:
            self.failures += 1
            self.last_failure = _reason(error, self._timeout)
            raise Unavailable(f"slurmrestd at {self.where} did not answer {method} {path}: "
                              f"{self.last_failure}") from None
        self.last_failure = None
        if listing and self._jobs_reader is not None and len(data) > self._jobs_reader.above:
            read = await self._jobs_reader.read(data)
            return Answer(response.code, read, "" if read is not None else _first_line(data))
        try:
            document = json.loads(data)
        except ValueError:
            return Answer(response.code, None, _first_line(data))
        return Answer(response.code, document if isinstance(document, dict) else None)

    def close(self) -> Deferred[None] | None:
        """Close the idle connections kept for reuse (a Deferred)."""
        if self._pool is None:
            return None
        closed: Deferred[None] = self._pool.closeCachedConnections()
        return closed

    def metrics(self) -> Iterator[Sample]:
        """Requests made and failed (no headers, so no token, ever reach a sample)."""
        yield Sample("dssr_slurmrestd_requests", "counter", "Requests made to slurmrestd",
                     self.requests)
        yield Sample("dssr_slurmrestd_failures", "counter",
                     "Requests to slurmrestd that got no answer", self.failures)


def _reason(error: Exception, timeout: float) -> str:
    """What went wrong, in words: no token or header can be in it."""
    if isinstance(error, TimeoutError | CancelledError):
        return f"no answer within {timeout:g} s"
    if isinstance(error, ResponseFailed):
        reasons = [failure.getErrorMessage() for failure in error.reasons]
        return "the connection failed: " + ("; ".join(reasons) or "closed")
    return str(error) or type(error).__name__


class ClientService(Service):
    """Closes the client's kept connections when the process stops."""

    def __init__(self, client: RestClient):
        self._client = client

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        return self._client.close()
