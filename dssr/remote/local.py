"""``IRemote`` on this host, for a DSSR that runs on the login node itself."""

import os
import pwd
import signal
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import IDelayedCall, IProcessTransport
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from dssr.remote.interfaces import CommandTimeout, IRemote, RemoteError, RemoteResult
from dssr.remote.output import OutputBuffer
from dssr.samples import Sample

# Run argv through sh without building a command line: "$@" keeps every argument
# intact, and a missing program gives exit status 127 as it would over SSH.
_SHELL = ("/bin/sh", "-c", 'exec "$@"', "sh")
# All that commands see of DSSR's own environment, which holds its secrets (server
# key, registry passwords, key passphrase): sbatch's default --export=ALL would hand
# anything more on to the job. SLURM_CONF is no secret, and login nodes with a
# non-default Slurm config need it.
PASSED_ON = ("PATH", "LANG", "SLURM_CONF")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
T = TypeVar("T")


def command_environment(environ: Mapping[str, str],
                        account: pwd.struct_passwd) -> dict[str, str]:
    """The environment a command runs in: ``PASSED_ON`` from ``environ``, and the
    account's ``HOME``, ``USER`` and ``LOGNAME``."""
    env = {name: environ[name] for name in PASSED_ON if environ.get(name)}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    return env


@implementer(IRemote)
class LocalRemote:
    """Runs argv with ``spawnProcess`` in a minimal environment (``command_environment``
    of ``environ``); a mapped ``user`` needs DSSR to run as root."""

    service = None  # nothing to open or close

    def __init__(
        self,
        reactor: Any,  # IReactorProcess, IReactorTime, IReactorTCP and IReactorUNIX
        command_timeout: float,
        max_output: int,
        environ: Mapping[str, str] = os.environ,
    ):
        self._reactor = reactor
        self._command_timeout = command_timeout
        self._max_output = max_output
        self._environ = dict(environ)

    def run(self, argv: list[str], stdin: bytes | None = None, user: str | None = None,
            timeout: float | None = None) -> Deferred[RemoteResult]:
        if isinstance(argv, str | bytes) or not argv or not all(
                isinstance(arg, str) for arg in argv):
            raise ValueError("argv must be a non-empty list of str")
        try:
            account = _account(user)
        except RemoteError as error:
            return fail(error)
        env = command_environment(self._environ, account)
        switch = account.pw_uid != os.geteuid()
        process = _Process(stdin, self._max_output)
        self._reactor.spawnProcess(
            process, _SHELL[0], [*_SHELL, *argv], env=env,
            path=account.pw_dir if os.path.isdir(account.pw_dir) else None,
            uid=account.pw_uid if switch else None, gid=account.pw_gid if switch else None,
        )
        timeout = self._command_timeout if timeout is None else timeout
        if timeout:
            timer = self._reactor.callLater(timeout, process.stop, CommandTimeout(
                f"the command ran longer than {timeout:g}s and was cut off"))
            process.result.addBoth(_cancel_timer, timer)
        return process.result

    def tcp_endpoint(self, host: str, port: int, user: str | None = None) -> HostnameEndpoint:
        """A plain TCP endpoint from this host: there is no login to forward through."""
        return HostnameEndpoint(self._reactor, host, port)

    def unix_endpoint(self, path: str, user: str | None = None) -> UNIXClientEndpoint:
        """A plain unix socket endpoint on this host, connected as DSSR's own account."""
        return UNIXClientEndpoint(self._reactor, path)

    def state(self) -> tuple[str, str | None]:
        return "connected", None

    def metrics(self) -> Iterable[Sample]:
        return ()


def _account(user: str | None) -> pwd.struct_passwd:
    """The account to run as: ``user``, or the one DSSR runs as."""
    try:
        account = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    except KeyError:
        raise RemoteError(f"no such user on this host: {user}") from None
    if account.pw_uid != os.geteuid() and os.geteuid() != 0:
        raise RemoteError(f"cannot run commands as {user}: DSSR does not run as root")
    return account


def _cancel_timer(result: T, timer: IDelayedCall) -> T:
    if timer.active():
        timer.cancel()
    return result


class _Process(ProcessProtocol):
    """Feeds stdin, keeps capped output, fires ``result`` when the process has ended."""

    transport: IProcessTransport  # set by spawnProcess before connectionMade

    def __init__(self, stdin: bytes | None, max_output: int):
        self.result: Deferred[RemoteResult] = Deferred()
        self._stdin = stdin or b""
        self._out = {1: OutputBuffer("stdout", max_output), 2: OutputBuffer("stderr", max_output)}
        self._error: RemoteError | None = None

    def connectionMade(self) -> None:
        self.transport.write(self._stdin)
        self.transport.closeStdin()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        try:
            self._out[childFD].add(data)
        except RemoteError as error:
            self.stop(error)

    def stop(self, error: RemoteError) -> None:
        """Kill the process and fail with ``error`` once it is gone.

        Our ends of its pipes are closed too, so a grandchild still holding them
        cannot keep the command alive in our eyes.
        """
        if self._error is not None:
            return
        self._error = error
        try:
            self.transport.signalProcess("KILL")
        except ProcessExitedAlready:
            pass
        self.transport.loseConnection()

    def processEnded(self, reason: Failure) -> None:
        if self._error is not None:
            self.result.errback(self._error)
            return
        status, name = None, None
        if isinstance(reason.value, ProcessDone):
            status = 0
        elif isinstance(reason.value, ProcessTerminated):
            status = reason.value.exitCode
            if reason.value.signal is not None:
                name = signal.Signals(reason.value.signal).name.removeprefix("SIG")
        self.result.callback(RemoteResult(status, name, self._out[1].value(), self._out[2].value()))
