"""``IRemote.run`` as the layers above the transport use it: logged, failures typed.

Each command is logged at debug with its argv only: argv never holds a secret, while
stdin (a batch script, with registry credentials) is never logged. A command that
could not run or finish is ``Unavailable``: the cluster is not there.
"""

import shlex
from collections.abc import Sequence

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from dssr.errors import Unavailable
from dssr.remote.interfaces import IRemote, RemoteError, RemoteResult

_log = Logger(namespace="dssr.slurm")


def command_text(argv: Sequence[str], longest: int = 120) -> str:
    """``argv`` as a shell line for the debug log, each argument cut to ``longest``."""
    return shlex.join(arg if len(arg) <= longest else arg[:longest] + "..." for arg in argv)


class LoggedRemote:
    """Runs commands through ``remote`` (an ``IRemote``), timing them on ``clock``.

    ``service_user`` names the service account in the log.
    """

    def __init__(self, remote: IRemote, clock: IReactorTime, service_user: str = ""):
        self.remote = remote
        self.clock = clock
        self._service_user = service_user

    async def run(self, argv: list[str], stdin: bytes | None = None,
                  user: str | None = None) -> RemoteResult:
        """Run ``argv`` as ``user``; its result whatever the exit status, else ``Unavailable``."""
        started = self.clock.seconds()
        who = user or self._service_user or "service account"
        try:
            result = await self.remote.run(argv, stdin=stdin, user=user)
        except RemoteError as error:
            _log.debug("{user}: {command} -> {error}", user=who, command=command_text(argv),
                       error=error)
            raise Unavailable(f"cannot run {argv[0]} on the login node: {error}") from None
        _log.debug("{user}: {command} -> exit {status} in {ms:.1f} ms", user=who,
                   command=command_text(argv),
                   status=result.signal if result.status is None else result.status,
                   ms=(self.clock.seconds() - started) * 1000)
        return result

    def unready(self) -> str | None:
        """Why the transport cannot run a command right now without waiting, or None."""
        state, error = self.remote.state()
        if state == "connected":
            return None
        return f"SSH {state}" + (f": {error}" if error else "")
