"""Checks of the way in: the private key, TCP to the login node, its host key, our login.

The login is the service's own (``dssr.compose.ssh_login``) with its own known_hosts
logic; only what a check must not do is changed: ``accept-new`` does not write the file.
"""

from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.ssh.keys import Key
from twisted.internet import error as net
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from dssr import compose
from dssr.checks.config import env_label
from dssr.checks.report import Outcome, failed, passed
from dssr.remote.hostkeys import KnownHosts, host_token
from dssr.remote.interfaces import (
    AuthenticationFailed,
    ForwardRefused,
    HostKeyError,
    RemoteError,
)
from dssr.remote.keys import describe

CONNECT_FAILED = 2  # RFC 4254's reason for a stream whose destination did not answer
# ssh-keyscan -t and /etc/ssh/ssh_host_<kind>_key.pub, by Conch's key type.
_KINDS = {"Ed25519": "ed25519", "RSA": "rsa", "EC": "ecdsa"}


class ObservedKnownHosts(KnownHosts):
    """The service's host key decision, remembering the key offered; never writes the file.

    With ``accept_new`` an unknown key is accepted as the service would accept it,
    but only noted in ``trusted_on_first_use``: a check changes nothing.
    """

    offered: Key | None = None
    trusted_on_first_use = False

    def check(self, host: str, port: int, key: Key) -> None:
        self.offered = key
        super().check(host, port, key)

    def trust(self, host: str, port: int, key: Key) -> None:
        self.trusted_on_first_use = True


def check_private_key(settings) -> tuple[Outcome, Key | None]:
    """Whether the service account's key parses (and decrypts); never shows key material."""
    try:
        key = compose.private_key(settings)
    except ValueError as error:
        fixes = [f"set {env_label('ssh_pkey')} to the private key file's text, or its "
                 f"base64 (base64 -w0 ~/.ssh/id_ed25519)"]
        if "passphrase" in str(error) or "encrypted" in str(error):
            fixes.append(f"set {env_label('ssh_pkey_passphrase')} to the key's passphrase "
                         f"(or to nothing for an unencrypted key)")
        return failed(f"{env_label('ssh_pkey')}: {error}", *fixes), None
    return passed(f"{describe(key)}"), key


def throwaway_key() -> Key:
    """A fresh key to reach the host key exchange when the configured key is unusable."""
    return Key(ed25519.Ed25519PrivateKey.generate())


class _Probe(Protocol):
    def __init__(self):
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason) -> None:
        self.lost.callback(None)


async def check_tcp(reactor, host: str, port: int, timeout: float) -> Outcome:
    """Whether ``host:port`` takes a TCP connection (closed again at once)."""
    endpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
    address = f"{env_label('cluster_addr')} and {env_label('cluster_port')}"
    try:
        probe = await connectProtocol(endpoint, _Probe())
    except net.DNSLookupError:
        return failed(f"cannot resolve the host name {host}",
                      f"set {env_label('cluster_addr')} to the login node's name as this host "
                      f"resolves it (check DNS or /etc/hosts), or to its IP address")
    except net.ConnectionRefusedError:
        return failed(f"{host}:{port} refused the connection: nothing listens there",
                      f"check {address}: {port} must be the port sshd listens on at "
                      f"{host}, and sshd must be running there")
    except (net.TimeoutError, net.TCPTimedOutError):
        return failed(f"no answer from {host}:{port} within {timeout:g}s",
                      f"check {address}, and that no firewall drops connections from "
                      f"this host to {host} port {port}")
    except net.ConnectError as error:
        return failed(f"cannot connect to {host}:{port}: {error}",
                      f"check {address} and the network between this host and {host}")
    peer = probe.transport.getPeer().host
    probe.transport.loseConnection()
    await probe.lost
    shown = host if peer == host else f"{host} ({peer})"
    return passed(f"{shown} port {port} accepts TCP connections")


async def log_in(login, user: str, key: Key):
    """Log in with ``login`` (``dssr.compose.ssh_login``): the connection, or the
    ``RemoteError`` it failed with."""
    try:
        return await login(user, key)
    except RemoteError as error:
        return error


def host_key_outcome(login, known_hosts: ObservedKnownHosts, host: str, port: int) -> Outcome:
    """The host key check, read from a login attempt (``log_in``'s result)."""
    offered = known_hosts.offered
    if isinstance(login, HostKeyError):
        if offered is None:  # the file itself could not be read
            return failed(str(login), f"make {known_hosts.path} readable by the account "
                                      f"DSSR runs as, or point {env_label('ssh_known_hosts')} "
                                      f"at a readable file")
        return failed(str(login), *host_key_fixes(login, offered, host, port, known_hosts.path))
    if offered is None:
        return failed(f"no SSH handshake with {host}:{port}: {login}",
                      f"check that {env_label('cluster_port')} ({port}) is sshd's port on "
                      f"{host} (ssh -p {port} {host} must answer)")
    if known_hosts.trusted_on_first_use:
        return passed(f"{describe(offered)} is not in {known_hosts.path} yet; DSSR will add "
                      f"it on first connect (ssh_host_key_policy accept-new)")
    return passed(f"{describe(offered)} is trusted by {known_hosts.path}")


def host_key_fixes(error: HostKeyError, offered: Key, host: str, port: int,
                   path: str) -> list[str]:
    """How to trust the right host key: compare fingerprints, then add it (exact commands)."""
    kind = _KINDS.get(offered.type(), offered.sshType().decode("ascii"))
    compare = (f"on {host}, check that `ssh-keygen -lf /etc/ssh/ssh_host_{kind}_key.pub` "
               f"shows {describe(offered)}")
    add = f"ssh-keyscan -p {port} -t {kind} {host} >> {path}"
    if "@revoked" in str(error):
        return [f"{host} offers a key marked @revoked: give the login node a new host key, "
                f"then {compare.replace(describe(offered), 'the new key')} and run: {add}"]
    if "CHANGED" in str(error):
        return [f"if the change is expected ({compare}), drop the old entry: "
                f"ssh-keygen -R '{host_token(host, port)}' -f {path}",
                f"then add the new key: {add}",
                "if it is not expected, do not connect: someone may be in the way"]
    return [f"{compare}, then add it: {add}",
            f"or set {env_label('ssh_host_key_policy')} to accept-new to trust the key "
            f"offered on first connect"]


async def check_forwarding(remote, users: list, host: str, port: int) -> Outcome:
    """Whether sshd lets each of ``users`` (None: the service account) open forwarded
    streams, as the proxy to interactive jobs needs: a stream to the login node's own
    sshd port opens, or fails only because nothing listens there."""
    denied = []
    for user in users:
        try:
            probe = await connectProtocol(remote.tcp_endpoint("127.0.0.1", port, user),
                                          _Probe())
        except ForwardRefused as refusal:
            if refusal.code != CONNECT_FAILED:  # connect failed: allowed, nothing there
                denied.append(user or "the service account")
            continue
        probe.transport.loseConnection()
        await probe.lost
    if denied:
        return failed(f"sshd on {host} does not let {', '.join(denied)} open forwarded "
                      f"streams: interactive jobs' apps cannot be reached",
                      f"set AllowTcpForwarding yes in {host}'s sshd_config (for these "
                      f"accounts at least, in a Match User block) and reload sshd")
    return passed(f"sshd on {host} allows TCP forwarding for DSSR's accounts")


def login_outcome(login, user: str, key: Key, host: str, port: int) -> Outcome:
    """The authentication check, read from a login attempt with the service account's key."""
    if isinstance(login, AuthenticationFailed):
        return failed(f"{host_token(host, port)} refused {user}'s key {describe(key)}",
                      *authorized_keys_fixes(user, key, host, f"{env_label('ssh_pkey')}"))
    if isinstance(login, RemoteError):
        return failed(f"could not log in as {user}: {login}",
                      f"run `ssh -p {port} {user}@{host} true` from this host to see why")
    return passed(f"logged in to {host_token(host, port)} as {user} with {describe(key)}")


def authorized_keys_fixes(user: str, key: Key, host: str, where: str) -> list[str]:
    """Let ``key`` log in as ``user`` (its public half only), or configure the right key."""
    public = key.public().toString("openssh").decode("ascii")
    return [f"append this line to ~{user}/.ssh/authorized_keys on {host}: {public}",
            f"or set {where} to the private key {user} already has authorized"]
