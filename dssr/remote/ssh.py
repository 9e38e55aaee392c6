"""``IRemote`` over SSH: the service account's persistent connection plus one per mapped user."""

import random
import shlex
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from twisted.application.service import IService, Service
from twisted.conch.ssh.keys import Key
from twisted.internet.defer import Deferred, fail, gatherResults
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from dssr.remote.conch import Connection
from dssr.remote.forward import (
    Destination,
    ForwardChannel,
    ForwardEndpoint,
    TCPDestination,
    UnixDestination,
)
from dssr.remote.interfaces import IRemote, RemoteError, RemoteResult
from dssr.remote.keys import decode_key_text, load_private_key
from dssr.remote.link import Link
from dssr.remote.policy import Policy
from dssr.samples import Sample

# Mapped cluster user -> private key: bytes, or text as in settings (PEM/OpenSSH or base64).
UserKeys = Mapping[str, bytes | str] | Callable[[str], bytes | str | None]


@implementer(IRemote, IService)
class SSHRemote(Service):
    """Runs commands on the login node over SSH, never more than one login per user.

    ``connect(user, key)`` logs in and fires with a connection (see ``dssr.remote.link``;
    ``dssr.compose`` builds it from the settings). ``user_keys`` gives a mapped cluster
    user's private key (see ``UserKeys``). ``user_labels``: ``metrics`` names each
    account instead of only its role. It is its own ``service``: starting it connects
    the service account, stopping it closes every connection.
    """

    def __init__(
        self,
        connect: Callable[[str, Key], Deferred[Connection]],
        clock: IReactorTime,
        address: str,
        service_user: str,
        service_key: Key,
        user_keys: UserKeys | None = None,
        policy: Policy | None = None,
        random: Callable[[], float] = random.random,
        user_labels: bool = False,
    ):
        self._connect = connect
        self._user_labels = user_labels
        self._clock = clock
        self._address = address
        self._service_user = service_user
        self._user_keys = user_keys or {}
        self._policy = policy or Policy()
        self._random = random
        self._links: dict[str, Link] = {}
        self._main = self._new_link(service_user, service_key, persistent=True)

    def run(self, argv: list[str], stdin: bytes | None = None, user: str | None = None,
            timeout: float | None = None) -> Deferred[RemoteResult]:
        if isinstance(argv, str | bytes) or not argv or not all(
                isinstance(arg, str) for arg in argv):
            raise ValueError("argv must be a non-empty list of str")
        try:
            link = self._link(user)
        except RemoteError as error:
            return fail(error)
        return link.run(shlex.join(argv).encode("utf-8"), stdin, timeout)

    def tcp_endpoint(self, host: str, port: int, user: str | None = None) -> ForwardEndpoint:
        return self._endpoint(TCPDestination(host, port), user)

    def unix_endpoint(self, path: str, user: str | None = None) -> ForwardEndpoint:
        return self._endpoint(UnixDestination(path), user)

    def _endpoint(self, destination: Destination, user: str | None) -> ForwardEndpoint:
        def open_stream() -> Deferred[ForwardChannel]:
            try:
                link = self._link(user)
            except RemoteError as error:
                return fail(error)
            return link.stream(destination)
        return ForwardEndpoint(open_stream, destination)

    @property
    def service(self) -> "SSHRemote":
        return self

    def state(self) -> tuple[str, str | None]:
        return self._main.state()

    def metrics(self) -> Iterator[Sample]:
        """Samples for ``/metrics``: logins, commands, failures, connections up, streams.

        Labelled by ``role``, ``service`` or ``mapped`` (summed over mapped users), so
        the page names no account unless ``user_labels`` adds a ``user`` label.
        """
        totals: dict[tuple[tuple[str, str], ...], Counter[str]] = {}
        for user, link in self._links.items():
            labels = {"role": "service" if user == self._service_user else "mapped"}
            if self._user_labels:
                labels["user"] = user
            totals.setdefault(tuple(labels.items()), Counter()).update({
                "logins": link.logins, "commands": link.commands, "failures": link.failures,
                "connected": int(link.state()[0] == "connected"),
                "streams": link.streams.opened, "open_streams": link.streams.open()})
        for pairs, counts in totals.items():
            labels = dict(pairs)
            yield Sample("dssr_ssh_logins", "counter", "SSH logins made", counts["logins"],
                         labels)
            yield Sample("dssr_remote_commands", "counter", "Commands run on the cluster",
                         counts["commands"], labels)
            yield Sample("dssr_remote_command_failures", "counter",
                         "Commands that could not run or finish", counts["failures"], labels)
            yield Sample("dssr_ssh_connected", "gauge", "SSH connections up",
                         counts["connected"], labels)
            yield Sample("dssr_ssh_streams", "counter", "Forwarded streams opened",
                         counts["streams"], labels)
            yield Sample("dssr_ssh_open_streams", "gauge", "Forwarded streams open now",
                         counts["open_streams"], labels)

    def startService(self) -> None:
        super().startService()
        self._main.start()

    def stopService(self) -> Deferred[list[None]]:
        super().stopService()
        return gatherResults([link.stop() for link in self._links.values()])

    def _link(self, user: str | None) -> Link:
        user = user or self._service_user
        if user not in self._links:
            self._new_link(user, self._user_key(user), persistent=False)
        return self._links[user]

    def _new_link(self, user: str, key: Key, persistent: bool) -> Link:
        link = Link(lambda: self._connect(user, key), self._clock, f"{user}@{self._address}",
                    self._policy, persistent, self._random)
        self._links[user] = link
        return link

    def _user_key(self, user: str) -> Key:
        found = (self._user_keys(user) if callable(self._user_keys)
                 else self._user_keys.get(user))
        if not found:
            raise RemoteError(f"no private key is configured for mapped user {user}")
        try:
            return load_private_key(decode_key_text(found) if isinstance(found, str) else found)
        except ValueError as error:  # PrivateKeyError, or neither key text nor base64
            raise RemoteError(f"private key of mapped user {user}: {error}") from None
