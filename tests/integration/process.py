"""DSSR as a real ``twistd dssr`` process against the rig, for tests that kill it or load it.

An in-process DSSR shares the test's reactor; a separate process is what a site runs:
it can be SIGKILLed mid-flight, and clients in the test cannot slow its reactor down.
"""

import os
import sys

import treq
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectError, ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.web.client import HTTPConnectionPool, ResponseFailed

from tests.integration.sshd import free_port

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def twistd_argv(directory: str, log_path: str, port: int) -> list[str]:
    """``twistd -n dssr`` with the slurm connector on 127.0.0.1:``port``, its state in
    ``directory`` and its log in ``log_path``."""
    state = os.path.join(directory, "state")
    os.makedirs(state, exist_ok=True)
    return [TWISTD, "-n", "--pidfile=", f"--logfile={log_path}", "dssr", "--connector",
            "slurm", "--listen", f"tcp:{port}:interface=127.0.0.1", "--state-dir", state]


class _Watcher(ProcessProtocol):
    """Keeps what the process prints outside its log file and fires ``ended`` at its exit."""

    def __init__(self):
        self.output = bytearray()
        self.ended: Deferred[ProcessDone | ProcessTerminated] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value)


class DSSRProcess:
    """One ``twistd -n dssr --connector slurm`` process; ``start`` it, then ``url``.

    ``environment`` is the rig's settings (``rig_environment()``); the process logs to
    ``directory/<label>.log`` and keeps its state in ``directory/state``, so a second
    process given the same directory is the same DSSR restarted.
    """

    def __init__(self, environment: dict[str, str], directory: str, label: str):
        self.directory = directory
        self.log_path = os.path.join(directory, f"{label}.log")
        self.url = ""
        self._environment = environment
        self._watcher = _Watcher()
        self._transport = None

    @property
    def running(self) -> bool:
        return self._transport is not None and not self._watcher.ended.called

    async def start(self, timeout: float = 30.0) -> str:
        """Spawn the process and wait until ``/ready`` answers 200; fires with its URL."""
        port = free_port()
        argv = twistd_argv(self.directory, self.log_path, port)
        environment = {**os.environ, **self._environment, "PYTHONPATH": CHECKOUT}
        self._transport = reactor.spawnProcess(self._watcher, TWISTD, argv, env=environment,
                                               path=self.directory)
        self.url = f"http://127.0.0.1:{port}"
        pool = HTTPConnectionPool(reactor, persistent=False)
        for _ in range(int(timeout / 0.2)):
            if not self.running:
                break
            try:
                response = await treq.get(self.url + "/ready", pool=pool, timeout=5)
                await response.content()
                if response.code == 200:
                    return self.url
            except (ConnectError, ResponseFailed, CancelledError):
                pass  # not listening yet, or busy starting: ask again
            await deferLater(reactor, 0.2, lambda: None)
        raise RuntimeError(f"DSSR process never became ready at {self.url}:\n{self.tail()}")

    def kill(self, signal: str = "KILL") -> Deferred:
        """Send ``signal``; fires with how the process ended (``ProcessTerminated``)."""
        self._transport.signalProcess(signal)
        return self._watcher.ended

    async def stop(self) -> None:
        """End the process politely if it still runs (SIGKILL after 15 s)."""
        if not self.running:
            return
        ended = self._watcher.ended
        self._transport.signalProcess("TERM")
        for _ in range(150):
            if ended.called:
                return
            await deferLater(reactor, 0.1, lambda: None)
        self._transport.signalProcess("KILL")
        await ended

    def tail(self, lines: int = 60) -> str:
        """The end of the process's log and console output, for failure messages."""
        text = ""
        if os.path.exists(self.log_path):
            with open(self.log_path, errors="replace") as handle:
                text = handle.read()
        text += self._watcher.output.decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])
