"""Byte streams to a host:port (or a unix socket) as seen from the login node.

A ``ForwardChannel`` is one OpenSSH ``direct-tcpip`` (or
``direct-streamlocal@openssh.com``) channel on a persistent connection, and is itself
the ``ITransport`` of the protocol connected through it, with flow control both ways:
when the server's window is full the protocol's producer is paused; our window grows
as the protocol takes data, so while it pauses us the far side can send at most one
window more (held here). A
``ForwardEndpoint`` makes such a channel an ``IStreamClientEndpoint``, so standard
Twisted clients (``Agent.usingEndpointFactory``, ``connectProtocol``) use it as is.

Closing: ``loseConnection`` sends EOF and CLOSE once the buffered writes are out; an
EOF from the far side closes our side too (sshd only closes a forwarded channel once
both sides sent EOF), so the protocol sees ``connectionLost`` one round trip later.
"""

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from twisted.conch.ssh.channel import SSHChannel
from twisted.conch.ssh.common import NS
from twisted.conch.ssh.forwarding import packOpen_direct_tcpip
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IProducer,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from dssr.remote.interfaces import ForwardRefused, RemoteError
from dssr.twisted_private.ssh import logs_to

if TYPE_CHECKING:
    from dssr.remote.conch import Connection

# The receive window of a stream: what DSSR holds at most for a reader that paused
# (OpenSSH's own forwarding channels use the same 2 MiB).
STREAM_WINDOW = 2 * 1024 * 1024
_PACKET = 32768

# RFC 4254 channel-open failure codes, and what an admin should look at for each.
_REFUSALS = {
    1: "administratively prohibited (is forwarding allowed for this account: "
       "AllowTcpForwarding / AllowStreamLocalForwarding / PermitOpen in sshd_config?)",
    2: "connect failed (is anything listening there?)",
    3: "unknown channel type (the server does not support this kind of forwarding)",
    4: "resource shortage",
}


@dataclass(frozen=True)
class TCPDestination:
    """``host``:``port`` as the login node resolves and reaches it."""

    host: str
    port: int

    kind = b"direct-tcpip"

    def open_data(self) -> bytes:
        # The originator address is informational; sshd logs it.
        data: bytes = packOpen_direct_tcpip((self.host, self.port), ("127.0.0.1", 0))
        return data

    def address(self) -> IPv4Address:
        return IPv4Address("TCP", self.host, self.port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class UnixDestination:
    """A unix socket ``path`` on the login node."""

    path: str

    kind = b"direct-streamlocal@openssh.com"

    def open_data(self) -> bytes:
        # OpenSSH's PROTOCOL: socket path, reserved string, reserved uint32.
        return NS(self.path.encode("utf-8")) + NS(b"") + struct.pack(">L", 0)

    def address(self) -> UNIXAddress:
        return UNIXAddress(self.path)

    def __str__(self) -> str:
        return f"unix:{self.path}"


# Where a stream goes.
Destination = TCPDestination | UnixDestination


def refusal(destination: Destination, where: str, reason: object) -> ForwardRefused:
    """The error for a channel open that the server refused with ``reason`` (a ConchError)."""
    data, value = getattr(reason, "data", None), getattr(reason, "value", None)
    code = data if isinstance(data, int) else None
    said = value if isinstance(value, bytes) else b""
    detail = "refused" if code is None else _REFUSALS.get(code, "refused")
    text = said.decode("utf-8", "replace")
    return ForwardRefused(f"{where} would not open a stream to {destination}: {detail}"
                          + (f"; it said: {text}" if text else ""), code)


@implementer(ITransport, IPushProducer, IConsumer)
@logs_to(Logger(namespace="dssr.remote.forward"))
class ForwardChannel(SSHChannel):
    """One stream to ``destination``; ``opened`` fires with it once the server agrees.

    ``opened`` fails with ``ForwardRefused`` (or the connection's ``RemoteError``);
    ``done`` fires once the channel is gone on both sides.
    """

    conn: "Connection | None"  # Conch sets it; ours has grow_window

    def __init__(self, destination: Destination, where: str, window: int = STREAM_WINDOW):
        super().__init__(localWindow=window, localMaxPacket=_PACKET)
        self.name = destination.kind
        self.destination = destination
        self.opened: Deferred[ForwardChannel] = Deferred(lambda _: self._abandon())
        self.done: Deferred[None] = Deferred()
        self.protocol: IProtocol | None = None
        self.paused = False  # our reader paused us: hold what arrives
        self._where = where
        self._pending: deque[bytes] = deque()
        self._held = 0  # bytes in _pending
        self._producer: IPushProducer | None = None
        self._streaming = True
        self._abandoned = False
        self._reason: Failure = Failure(ConnectionDone("the stream was closed"))
        self._lost_error: RemoteError | None = None

    @property
    def disconnecting(self) -> bool:
        return bool(self.closing or self.localClosed)

    # The server's side

    def channelOpen(self, specificData: bytes) -> None:
        if self._abandoned:
            self.abortConnection()
            return
        self.opened.callback(self)

    def openFailed(self, reason: object) -> None:
        error = self._lost_error or refusal(self.destination, self._where, reason)
        self._release()
        if not self.opened.called:
            self.opened.errback(error)

    def lost(self, error: RemoteError) -> None:
        """The connection went away under this stream."""
        self._lost_error = error
        self._reason = Failure(error)

    def dataReceived(self, data: bytes) -> None:
        self._pending.append(data)
        self._held += len(data)
        self._deliver()

    def eofReceived(self) -> None:
        # The far end will send nothing more; sshd keeps the channel until we close
        # too, so close (after our buffered writes) instead of leaving it half open.
        self.loseConnection()

    def closeReceived(self) -> None:
        # The far side takes no more data: drop what the window held back, and close.
        self.buf = b""
        self.closing = 1
        if self.conn is not None:
            self.conn.sendClose(self)

    def closed(self) -> None:
        self._deliver(force=True)
        self._release()  # first: the channel is gone before anyone hears of it
        protocol, self.protocol = self.protocol, None
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()
        if protocol is not None:
            protocol.connectionLost(self._reason)

    def addWindowBytes(self, data: int) -> None:
        super().addWindowBytes(data)
        if self._producer is not None and not self._streaming and not self.buf:
            self._producer.resumeProducing()

    def stopWriting(self) -> None:
        if self._producer is not None and self._streaming:
            self._producer.pauseProducing()

    def startWriting(self) -> None:
        if self._producer is not None and self._streaming:
            self._producer.resumeProducing()

    # The protocol's side (ITransport, IPushProducer, IConsumer)

    def attach(self, protocol: IProtocol) -> None:
        """Connect ``protocol`` to this stream, handing it what already arrived."""
        self.protocol = protocol
        protocol.makeConnection(self)
        self._deliver()

    def write(self, data: bytes) -> None:
        if data and not self.localClosed:
            super().write(data)

    def loseConnection(self) -> None:
        """Send EOF and then CLOSE, once the writes still waiting for window are out."""
        self.closing = 1
        if self.conn is None or self.buf or self.localClosed:
            return  # SSHChannel.write calls us again once the buffer is out
        self.conn.sendEOF(self)
        self.conn.sendClose(self)

    def abortConnection(self) -> None:
        """Close at once, dropping unsent writes."""
        self.buf = b""
        self.loseConnection()

    def getPeer(self) -> IAddress:
        return self.destination.address()

    def getHost(self) -> IAddress:
        assert self.conn is not None and self.conn.transport is not None  # open
        host: IAddress = self.conn.transport.getHost()
        return host

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._deliver()

    def stopProducing(self) -> None:
        self.abortConnection()

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        if self._producer is not None:
            raise RuntimeError("a producer is already registered")
        # A pull producer (not streaming) is only ever resumed, as IPullProducer allows.
        pushing = cast(IPushProducer, producer)
        self._producer, self._streaming = pushing, streaming
        if streaming and not self.areWriting:
            pushing.pauseProducing()
        elif not streaming:
            pushing.resumeProducing()

    def unregisterProducer(self) -> None:
        self._producer = None

    def _deliver(self, force: bool = False) -> None:
        """Hand the protocol what arrived (unless it paused us), then grow the window
        by what it took: the far side may have one window in flight or held, no more."""
        while self._pending and self.protocol is not None and (force or not self.paused):
            data = self._pending.popleft()
            self._held -= len(data)
            self.protocol.dataReceived(data)
        granted = self.localWindowLeft + self._held
        if (self.conn is not None and not self.localClosed
                and granted < self.localWindowSize // 2):
            self.conn.grow_window(self, self.localWindowSize - granted)

    def _abandon(self) -> None:
        """The caller gave up before the server answered: close once it does."""
        self._abandoned = True

    def _release(self) -> None:
        if not self.done.called:
            self.done.callback(None)


@implementer(IStreamClientEndpoint)
class ForwardEndpoint:
    """Connects protocols to ``destination`` through streams that ``open()`` opens.

    ``open`` (e.g. ``Link.stream``) fires with an open ``ForwardChannel``.
    """

    def __init__(self, open: Callable[[], Deferred[ForwardChannel]], destination: Destination):
        self._open = open
        self.destination = destination

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        def attach(channel: ForwardChannel) -> IProtocol:
            protocol = protocolFactory.buildProtocol(channel.getPeer())
            if protocol is None:
                channel.abortConnection()
                raise ForwardRefused(f"the protocol factory refused a stream to "
                                     f"{self.destination}")
            channel.attach(protocol)
            return protocol
        return self._open().addCallback(attach)

    def __repr__(self) -> str:
        return f"<ForwardEndpoint to {self.destination}>"
