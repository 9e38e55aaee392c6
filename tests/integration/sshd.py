"""A private OpenSSH sshd on 127.0.0.1 for tests and benchmarks.

It runs as the current user on a free port, with its own host key, config,
authorized_keys file and VERBOSE log, all in one directory. It needs no root; run as
root it also allows root (and other accounts) to log in by key.
"""

import os
import signal
import socket
import uuid
from unittest import SkipTest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater

SSHD = "/usr/sbin/sshd"

_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {directory}/host_key
PidFile {directory}/sshd.pid
AuthorizedKeysFile {directory}/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxSessions 10
MaxStartups 100:30:200
LogLevel VERBOSE
# bash reads ~/.bashrc for commands run by sshd unless SHLVL says it is nested; a
# heavy .bashrc (pyenv init...) would otherwise dominate every test and bench figure.
# DSSR_TEST_SSHD marks every command this server runs, so stop() can find them all.
SetEnv SHLVL=1 DSSR_TEST_SSHD={marker}
"""


def require_sshd() -> None:
    """Skip the calling test, saying how to fix it, when OpenSSH's sshd is not installed."""
    if not os.access(SSHD, os.X_OK):
        raise SkipTest(f"{SSHD} not found: install openssh-server to run the SSH "
                       "integration tests (apt-get install openssh-server)")


def generate_key(kind: str = "ed25519") -> tuple[bytes, bytes]:
    """A new ``kind`` (ed25519, rsa, ecdsa) key pair: OpenSSH private text, public line."""
    private = {
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
    }[kind]()
    text = private.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.OpenSSH,
                                 serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH)
    return text, public + b"\n"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Ended(ProcessProtocol):
    def __init__(self):
        self.ended: Deferred = Deferred()

    def processEnded(self, reason) -> None:
        self.ended.callback(None)


class SSHServer:
    """An sshd whose files live in ``directory``; ``start`` and ``stop`` it from the reactor.

    ``extra_config`` lines are added to its sshd_config.
    """

    host = "127.0.0.1"

    def __init__(self, reactor, directory: str, extra_config: str = ""):
        self.reactor = reactor
        self.extra_config = extra_config
        self.directory = directory
        self.port = free_port()
        self.log_path = os.path.join(directory, "sshd.log")
        self.authorized_keys = os.path.join(directory, "authorized_keys")
        self.host_private, self.host_public = generate_key()
        self._write("host_key", self.host_private, 0o600)
        self._write("authorized_keys", b"", 0o644)  # sshd reads it as the user logging in
        self._process = None
        self._marker = uuid.uuid4().hex

    def _write(self, name: str, data: bytes, mode: int) -> None:
        path = os.path.join(self.directory, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as out:
            out.write(data)

    def authorize(self, public_line: bytes) -> None:
        """Let the holder of this key log in (as any account)."""
        with open(self.authorized_keys, "ab") as keys:
            keys.write(public_line)

    def known_hosts_line(self) -> bytes:
        """This server's entry for a known_hosts file."""
        kind, blob = self.host_public.split()[:2]
        return b"[%s]:%d %s %s\n" % (self.host.encode(), self.port, kind, blob)

    def log(self) -> str:
        """Everything sshd has logged so far."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return log.read()
        except FileNotFoundError:
            return ""

    def accepted_logins(self, user: str | None = None) -> int:
        """How many "Accepted publickey" lines the log holds (for ``user`` if given)."""
        needle = "Accepted publickey for " + (f"{user} " if user else "")
        return self.log().count(needle)

    async def start(self) -> None:
        """Start sshd and return once it listens (it keeps its port across restarts)."""
        require_sshd()
        config = _CONFIG.format(port=self.port, directory=self.directory, marker=self._marker)
        config += self.extra_config
        self._write("sshd_config", config.encode(), 0o600)
        listening = f"Server listening on {self.host} port {self.port}"
        already = self.log().count(listening)
        self._process = _Ended()
        self.reactor.spawnProcess(
            self._process, SSHD,
            [SSHD, "-D", "-f", os.path.join(self.directory, "sshd_config"), "-E", self.log_path],
            env={"PATH": "/usr/bin:/bin"})
        for _ in range(250):
            if self.log().count(listening) > already:
                return
            if self._process.ended.called:
                break
            await deferLater(self.reactor, 0.02, lambda: None)
        await self.stop()
        raise RuntimeError(f"sshd did not start; its log ends:\n{self.log()[-2000:]}")

    async def stop(self) -> None:
        """Kill sshd and every process it started (connections, commands): like a crash.

        Commands whose channel was closed may have outlived their connection; they are
        found by the environment variable this server gives every command.
        """
        if self._process is None:
            return
        process, self._process = self._process, None
        pid = process.transport.pid
        doomed = {*_descendants(pid), pid} if pid else set()
        doomed |= _marked(f"DSSR_TEST_SSHD={self._marker}".encode())
        # All frozen first, then all killed: otherwise a session process could still
        # report its command's death (exit-signal) before its own, which no crash does.
        for how in (signal.SIGSTOP, signal.SIGKILL):
            for victim in doomed:
                try:
                    os.kill(victim, how)
                except ProcessLookupError:
                    pass
        await process.ended


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc (sshd's children call setsid)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def _marked(variable: bytes) -> set[int]:
    """Processes whose environment holds ``variable`` (``NAME=value``)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as environ:
                    if variable in environ.read().split(b"\0"):
                        found.add(int(entry))
            except OSError:
                continue
    return found
