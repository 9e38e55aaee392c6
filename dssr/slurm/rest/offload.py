"""Reading a large ``GET .../jobs`` answer off the reactor: ``dssr.slurm.rest.shrink`` in a
child process, so DSSR keeps answering while a big queue is read (see that module)."""

import json
import os
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

import dssr
from dssr.errors import Unavailable

# Listings up to this size are read in the reactor: a child would cost more than it saves.
OFFLOAD_ABOVE = 1 << 20
# The package's parent directory, so the child imports this DSSR whatever its sys.path.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(dssr.__file__)))


class _Shrinking(ProcessProtocol):
    """Feeds the answer to the child and collects what it prints."""

    def __init__(self, data: bytes):
        self._data = data
        self._out: list[bytes] = []
        self.error = b""  # the end of what it said on stderr (a traceback's last line)
        self.ended: Deferred[tuple[int | None, bytes]] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self._data)
        self.transport.closeStdin()
        self._data = b""

    def outReceived(self, data: bytes) -> None:
        self._out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.error = (self.error + data)[-500:]

    def processEnded(self, reason: Failure) -> None:
        code = 0 if reason.check(ProcessDone) else getattr(reason.value, "exitCode", None)
        self.ended.callback((code, b"".join(self._out)))


class JobsReader:
    """Reads large ``GET .../jobs`` answers (the client hands it those over ``above``
    bytes) as ``answers.queue`` needs them: cut down to the jobs named ``prefix``... by a
    child process that must finish within ``timeout`` seconds."""

    def __init__(self, reactor: Any, prefix: str, timeout: float,
                 above: int = OFFLOAD_ABOVE):
        self._reactor = reactor
        self._prefix = prefix
        self._timeout = timeout
        self.above = above
        self.offloaded = 0

    async def read(self, data: bytes) -> dict[str, Any] | None:
        """The answer as a JSON document (None when it is not a JSON object)."""
        self.offloaded += 1
        shrinking = _Shrinking(data)
        # Nothing of DSSR's own environment (its settings, secrets among them) but where
        # this DSSR's code is.
        environment = {"PYTHONPATH": os.pathsep.join(filter(None, [
            _ROOT, os.environ.get("PYTHONPATH")]))}
        try:
            process = self._reactor.spawnProcess(
                shrinking, sys.executable,
                [sys.executable, "-m", "dssr.slurm.rest.shrink", self._prefix], environment)
        except OSError as error:
            raise Unavailable(f"no process could read slurmrestd's {len(data)}-byte list of "
                              f"jobs: {error.strerror or error}") from None
        timer = self._reactor.callLater(self._timeout, _kill, process)
        code, out = await shrinking.ended
        if timer.active():
            timer.cancel()
        else:
            raise Unavailable(f"reading slurmrestd's {len(data)}-byte list of jobs took "
                              f"over {self._timeout:g} s")
        if code == 2:
            return None
        if code != 0:
            said = shrinking.error.decode("utf-8", "replace").strip().splitlines()
            raise Unavailable(f"the process reading slurmrestd's {len(data)}-byte list of "
                              f"jobs failed (exit {code}{': ' + said[-1] if said else ''})")
        document = json.loads(out)
        return document if isinstance(document, dict) else None


def _kill(process: Any) -> None:
    try:
        process.signalProcess("KILL")
    except ProcessExitedAlready:
        pass
