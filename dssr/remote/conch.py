"""One authenticated Conch SSH connection that runs commands as exec channels.

``dial`` connects, checks the host key, logs in with one private key and fires with
a ``Connection``; it never prompts. ``SSHCommandClientEndpoint`` closes its
connection when its command ends, so DSSR builds the transport, user-auth and
connection services itself to keep one connection for many commands.
"""

import struct
from dataclasses import dataclass
from typing import TypeVar, cast

from twisted.conch.error import ConchError
from twisted.conch.ssh.channel import SSHChannel
from twisted.conch.ssh.common import NS, getNS
from twisted.conch.ssh.connection import EXTENDED_DATA_STDERR, SSHConnection
from twisted.conch.ssh.keys import BadKeyError, Key
from twisted.conch.ssh.transport import DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint, ITCPTransport
from twisted.python.failure import Failure

from dssr.remote.aead import GCMClientTransport
from dssr.remote.forward import Destination, ForwardChannel
from dssr.remote.hostkeys import KnownHosts, host_token, preferred_algorithms
from dssr.remote.interfaces import (
    AuthenticationFailed,
    ChannelRefused,
    ConnectionLost,
    HostKeyError,
    NotConnected,
    RemoteError,
    RemoteResult,
)
from dssr.remote.keys import describe
from dssr.remote.output import OutputBuffer
from dssr.remote.quiet import CONCH_LOG
from dssr.remote.userauth import PublicKeyAuth
from dssr.twisted_private.ssh import logs_to

# Our receive window per channel: large enough that big outputs stream without stalls.
_WINDOW = 2 * 1024 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Where to log in (``host``, ``port``), as whom (``user``, ``key``), and whom to trust."""

    host: str
    port: int
    user: str
    key: Key
    known_hosts: KnownHosts

    def __str__(self) -> str:
        return f"{self.user}@{host_token(self.host, self.port)}"


@logs_to(CONCH_LOG)
class ExecChannel(SSHChannel):
    """Runs one command: streams its stdin, keeps its capped output, reports how it ended.

    ``result`` fires with a ``RemoteResult`` or fails with a ``RemoteError``; ``done``
    fires once the channel is gone on both sides (it then no longer counts against
    the server's MaxSessions, which is what the channel cap must track).
    """

    name = b"session"

    def __init__(self, command: bytes, stdin: bytes | None, max_output: int):
        super().__init__(localWindow=_WINDOW)
        self.result: Deferred[RemoteResult] = Deferred()
        self.done: Deferred[None] = Deferred()
        self._command = command
        self._stdin = stdin or b""
        self._sent = 0
        self._running = False
        self._stopped = False
        self._stdout = OutputBuffer("stdout", max_output)
        self._stderr = OutputBuffer("stderr", max_output)
        self._status: int | None = None
        self._signal: str | None = None

    def channelOpen(self, specificData: bytes) -> None:
        if self._stopped:
            self.loseConnection()
            return
        assert self.conn is not None  # Conch opened the channel on it
        request = self.conn.sendRequest(self, b"exec", NS(self._command), wantReply=True)
        request.addCallbacks(self._started, self._refused)

    def openFailed(self, reason: ConchError) -> None:
        # A ConchError from the server; on connection loss ``lost`` has already failed us.
        self._fail(ChannelRefused(f"the server refused a session channel: {reason}"))
        self._release()

    def _started(self, ignored: object) -> None:
        self._running = True
        self._pump()

    def _refused(self, reason: Failure) -> None:
        self.stop(RemoteError("the server refused to run the command"))

    def addWindowBytes(self, data: int) -> None:
        super().addWindowBytes(data)
        self._pump()

    def _pump(self) -> None:
        """Send as much stdin as the server's window allows; EOF once it is all sent."""
        if not self._running or self.closing or self.localClosed:
            return
        while self._sent < len(self._stdin) and self.remoteWindowLeft > 0:
            chunk = self._stdin[self._sent:self._sent + self.remoteWindowLeft]
            self._sent += len(chunk)
            self.write(chunk)
        if self._sent == len(self._stdin):
            self._running = False
            assert self.conn is not None  # _running: the channel is open
            self.conn.sendEOF(self)

    def dataReceived(self, data: bytes) -> None:
        self._keep(self._stdout, data)

    def extReceived(self, dataType: int, data: bytes) -> None:
        if dataType == EXTENDED_DATA_STDERR:
            self._keep(self._stderr, data)

    def _keep(self, buffer: OutputBuffer, data: bytes) -> None:
        try:
            buffer.add(data)
        except RemoteError as error:
            self.stop(error)

    def request_exit_status(self, data: bytes) -> int:
        (self._status,) = struct.unpack(">L", data[:4])
        return 1

    def request_exit_signal(self, data: bytes) -> int:
        name, _ = getNS(data)
        self._signal = name.decode("ascii", "replace")
        return 1

    def eofReceived(self) -> None:
        """Nothing to do: the result is known when the channel closes."""

    def closeReceived(self) -> None:
        self.loseConnection()  # as SSHChannel does, without an info line per command

    def closed(self) -> None:
        if self._status is None and self._signal is None:
            self._fail(RemoteError("the command's channel closed without an exit status"))
        elif not self.result.called:
            self.result.callback(RemoteResult(
                self._status, self._signal, self._stdout.value(), self._stderr.value()))
        self._release()

    def stop(self, error: RemoteError) -> None:
        """Cut the command off: fail with ``error``, kill it, close the channel."""
        self._fail(error)
        self._stopped = True
        self._running = False
        if self.conn is not None and self in self.conn.channelsToRemoteChannel:
            # OpenSSH 7.9+ kills the command's process group, except for root logins;
            # otherwise the command only sees its pipes close, and sshd closes the
            # channel (freeing its session) when the command exits.
            self.conn.sendRequest(self, b"signal", NS(b"KILL"))
            self.loseConnection()

    def lost(self, error: RemoteError) -> None:
        """The connection went away under this command."""
        self._fail(error)

    def _fail(self, error: RemoteError) -> None:
        if not self.result.called:
            self.result.errback(error)

    def _release(self) -> None:
        if not self.done.called:
            self.done.callback(None)


@logs_to(CONCH_LOG)
class Connection(SSHConnection):
    """A logged-in connection to ``target``.

    ``alive`` turns false as soon as it is closing; ``lost`` then fires with the
    ``ConnectionLost`` its in-flight commands failed with.
    """

    transport: "_Transport"  # set by Conch before the service starts

    def __init__(self, target: Target, ready: "Deferred[Connection]"):
        super().__init__()
        self.target = target
        self.lost: Deferred[ConnectionLost] = Deferred()
        self.alive = True
        self.why = "unknown reason"
        self._ready = ready

    def serviceStarted(self) -> None:
        super().serviceStarted()
        if not self._ready.called:
            self._ready.callback(self)

    def execute(self, command: bytes, stdin: bytes | None, max_output: int) -> ExecChannel:
        """Open a channel running ``command`` (a shell command line) and return it."""
        channel = ExecChannel(command, stdin, max_output)
        self.openChannel(channel)
        return channel

    def forward(self, destination: Destination) -> ForwardChannel:
        """Open a stream channel to ``destination`` (see ``dssr.remote.forward``)."""
        channel = ForwardChannel(destination, str(self.target))
        self.openChannel(channel, destination.open_data())
        return channel

    def adjustWindow(self, channel: SSHChannel, bytesToAdd: int) -> None:
        # Conch grows every window as data arrives; a stream grows its own as it is read.
        if not isinstance(channel, ForwardChannel):
            super().adjustWindow(channel, bytesToAdd)

    def grow_window(self, channel: SSHChannel, bytesToAdd: int) -> None:
        """Let ``channel``'s far side send ``bytesToAdd`` more bytes."""
        super().adjustWindow(channel, bytesToAdd)

    def ping(self) -> Deferred[None]:
        """A keepalive round trip: fires when the server answers, whatever it answers."""
        request: Deferred[object] = self.sendGlobalRequest(b"keepalive@openssh.com", b"",
                                                           wantReply=True)
        return request.addCallbacks(_answered, _answered_no)

    def close(self, why: str) -> Deferred[ConnectionLost]:
        """Disconnect politely; ``lost`` (returned) fires once it is done."""
        self.why = why
        self.alive = False
        self.transport.loseConnection()
        return self.lost

    def abort(self, why: str) -> None:
        """Drop the TCP connection at once (for a peer that stopped answering)."""
        self.why = why
        self.alive = False
        cast(ITCPTransport, self.transport.transport).abortConnection()  # or a test's

    def serviceStopped(self) -> None:
        self.alive = False
        error = ConnectionLost(f"connection to {self.target} lost: {self.why}")
        for channel in list(self.channels.values()):
            channel.lost(error)
        super().serviceStopped()
        self.lost.callback(error)


def _answered(result: object) -> None:
    return None


def _answered_no(failure: Failure) -> None:
    # OpenSSH answers keepalive@openssh.com with REQUEST_FAILURE: still an answer.
    failure.trap(ConchError)


@logs_to(CONCH_LOG)
class _Transport(GCMClientTransport):
    """The SSH transport for one login: strict host key check, then user-auth."""

    def __init__(self, target: Target, ready: Deferred[Connection]):
        self.target = target
        self.ready = ready
        self.error: RemoteError | None = None
        self.why: str | None = None
        self._secured = False  # keys in use: login asked for

    def connectionMade(self) -> None:
        try:
            known = self.target.known_hosts.keys_for(self.target.host, self.target.port)
        except HostKeyError:
            known = []  # reported by verifyHostKey
        self.supportedPublicKeys = preferred_algorithms(known, self.supportedPublicKeys)
        if ITCPTransport.providedBy(self.transport):
            # Commands are small request/response exchanges: Nagle would add ~40 ms each.
            self.transport.setTcpNoDelay(True)
        super().connectionMade()

    def verifyHostKey(self, hostKey: bytes, fingerprint: bytes) -> Deferred[bool]:
        try:
            self.target.known_hosts.check(
                self.target.host, self.target.port, Key.fromString(hostKey))
        except BadKeyError:
            self.error = HostKeyError(f"{self.target} sent a host key DSSR cannot read")
        except HostKeyError as error:
            self.error = error
        return fail(self.error) if self.error else succeed(True)

    def connectionSecure(self) -> None:
        # Conch calls this after every key exchange; a rekey must not ask to log in again
        # (sshd would log a kex_protocol_error for each).
        if self._secured:
            return
        self._secured = True
        connection = Connection(self.target, self.ready)
        self.requestService(PublicKeyAuth(self.target.user, self.target.key, connection))

    def sendDisconnect(self, reason: int, desc: bytes) -> None:
        if reason == DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE and self.error is None:
            self.error = AuthenticationFailed(
                f"{self.target} refused key {describe(self.target.key)}: is its public key "
                f"in {self.target.user}'s authorized_keys on {self.target.host}?"
            )
        self.why = self.why or desc.decode("utf-8", "replace")
        super().sendDisconnect(reason, desc)

    def receiveError(self, reasonCode: int, description: bytes) -> None:
        self.why = self.why or "the server said: " + description.decode("utf-8", "replace")

    # Twisted always passes the reason; only SSHTransportBase allows calling it without.
    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.why = self.why or reason.getErrorMessage()
        if isinstance(self.service, Connection):
            self.service.why = self.why
        super().connectionLost(reason)
        if not self.ready.called:
            self.ready.errback(
                self.error or NotConnected(f"could not log in to {self.target}: {self.why}"))


def dial(
    endpoint: IStreamClientEndpoint, target: Target, clock: IReactorTime, timeout: float
) -> Deferred[Connection]:
    """Connect to ``target`` and log in within ``timeout`` seconds.

    Fires with a ``Connection``; fails with ``HostKeyError``, ``AuthenticationFailed``
    or ``NotConnected``. Cancelling it abandons the attempt.
    """
    def abandon(why: str) -> None:
        transport.why = why
        if transport.transport is not None:
            cast(ITCPTransport, transport.transport).abortConnection()  # or a test's
        else:
            connecting.cancel()

    def cannot_connect(failure: Failure) -> None:
        if not ready.called:
            why = transport.why or failure.getErrorMessage()
            ready.errback(NotConnected(f"cannot connect to {target}: {why}"))

    def finished(result: T) -> T:
        if timer.active():
            timer.cancel()
        return result

    ready: Deferred[Connection] = Deferred(lambda _: abandon("cancelled"))
    transport = _Transport(target, ready)
    timer = clock.callLater(timeout, abandon, f"no SSH login within {timeout:g}s")
    connecting = connectProtocol(endpoint, transport)
    connecting.addErrback(cannot_connect)
    return ready.addBoth(finished)
