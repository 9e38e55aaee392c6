"""Running commands on the cluster's login node."""

from collections.abc import Iterable
from dataclasses import dataclass

from twisted.application.service import IService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import Attribute, Interface

from dssr.samples import Sample


@dataclass(frozen=True)
class RemoteResult:
    """How a remote command ended: exit ``status`` or the ``signal`` name that killed it."""

    status: int | None
    signal: str | None
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.status == 0


class RemoteError(Exception):
    """A command could not be run or did not finish (not: it ran and failed)."""


class ConnectionLost(RemoteError):
    """The connection to the login node went away while the command ran."""


class NotConnected(RemoteError):
    """No connection to the login node could be made in time."""


class CommandTimeout(RemoteError):
    """The command ran past its timeout and was cut off."""


class ChannelRefused(RemoteError):
    """The login node refused to open a session channel (e.g. at its MaxSessions)."""


class ForwardRefused(RemoteError):
    """The login node would not open a stream to a host:port or socket (forwarding
    not allowed for the account, or nothing listening there); ``code`` is SSH's reason
    (1 administratively prohibited, 2 connect failed, ...) when the server gave one."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class OutputTooLarge(RemoteError):
    """The command wrote more output than the configured cap and was stopped."""


class HostKeyError(RemoteError):
    """The login node's host key is unknown or has changed."""


class AuthenticationFailed(RemoteError):
    """The login node refused our key."""


class IRemote(Interface):
    """Runs argv lists on the login node, as the service account or a mapped user."""

    service: IService | None = Attribute(
        "An IService that opens and closes the transport's connections with the "
        "process, or None when there is nothing to open.")

    def run(argv: list[str], stdin: bytes | None = None, user: str | None = None,
            timeout: float | None = None) -> Deferred[RemoteResult]:
        """Run ``argv`` (a list of str, joined with ``shlex.join``), feeding ``stdin`` bytes.

        ``user`` picks a mapped cluster user (None: the service account). ``timeout``
        is in seconds (None: the configured default; 0: no limit). Fires with a
        ``RemoteResult`` whatever the exit status; errbacks with a ``RemoteError``
        subclass when the command could not run or finish. Raises ``ValueError`` at
        once when ``argv`` is not a non-empty list of str.
        """

    def tcp_endpoint(host: str, port: int, user: str | None = None) -> IStreamClientEndpoint:
        """An ``IStreamClientEndpoint`` reaching ``host``:``port`` as the login node sees it.

        Over SSH each ``connect`` opens a ``direct-tcpip`` channel on ``user``'s
        persistent connection (None: the service account), waiting for that connection
        like a command does; it fails with ``ForwardRefused`` when the server refuses
        the channel (forwarding not allowed, nothing listening) and with another
        ``RemoteError`` when there is no connection. The protocol's transport has flow
        control both ways (``IPushProducer``, ``IConsumer``). Streams do not count
        against the command channel cap: sshd's MaxSessions counts only sessions.
        The local transport connects over TCP from this host, whatever ``user``.
        """

    def unix_endpoint(path: str, user: str | None = None) -> IStreamClientEndpoint:
        """As ``tcp_endpoint``, for the unix socket ``path`` on the login node
        (``direct-streamlocal@openssh.com`` over SSH; sshd's AllowStreamLocalForwarding).
        """

    def state() -> tuple[str, str | None]:
        """Describe the transport now: a ``(state, last_error)`` pair, ``state`` one of
        ``"connected"``, ``"connecting"``, ``"failed"``, ``last_error`` a str or None."""

    def metrics() -> Iterable[Sample]:
        """``dssr.samples.Sample`` values for ``/metrics`` (an iterable, maybe empty)."""
