"""The forwarded streams of one link: those waiting for its connection, and those open.

A stream waits for the connection as a command does (``connect_wait``), then is
opened at once: it needs no free session, since sshd's MaxSessions counts sessions
only. The link stays open (not idle) while any stream waits or is open.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from dssr.remote.interfaces import NotConnected, RemoteError

if TYPE_CHECKING:
    from dssr.remote.conch import Connection
    from dssr.remote.forward import Destination, ForwardChannel


@dataclass
class _Wait:
    destination: "Destination"
    result: "Deferred[ForwardChannel]"
    deadline: IDelayedCall | None = None
    channel: "ForwardChannel | None" = None  # once the open is asked of the server


class Streams:
    """Opens streams with ``conn.forward(destination)`` for the link called ``name``.

    ``changed`` is called whenever the last stream may have gone (for the idle close);
    ``last_error`` says why the link is down.
    """

    def __init__(self, clock: IReactorTime, name: str, connect_wait: float,
                 changed: Callable[[], None], last_error: Callable[[], object]):
        self._clock = clock
        self._name = name
        self._connect_wait = connect_wait
        self._changed = changed
        self._last_error = last_error
        self._waits: list[_Wait] = []
        self._open: set[ForwardChannel] = set()
        self.opened = 0  # streams asked of the server so far

    def busy(self) -> bool:
        """Whether any stream waits for the connection or is open."""
        return bool(self._waits or self._open)

    def open(self) -> int:
        """How many streams are open now."""
        return len(self._open)

    def open_stream(self, destination: "Destination",
                    conn: "Connection | None") -> "Deferred[ForwardChannel]":
        """A stream to ``destination`` on ``conn``, or on the next connection when None."""
        wait = _Wait(destination, Deferred(lambda _: self._abandon(wait)))
        if conn is not None:
            self._start(wait, conn)
        else:
            wait.deadline = self._clock.callLater(self._connect_wait, self._expired, wait)
            self._waits.append(wait)
        return wait.result

    def connected(self, conn: "Connection") -> None:
        """The connection is up: open every waiting stream on it."""
        waits, self._waits = self._waits, []
        for wait in waits:
            _cancel(wait.deadline)  # active: a wait leaves the list when it expires
            self._start(wait, conn)

    def fail(self, error: RemoteError) -> None:
        """Fail every waiting stream with ``error`` (the connection cannot be made)."""
        waits, self._waits = self._waits, []
        for wait in waits:
            _cancel(wait.deadline)
            wait.result.errback(error)

    def _start(self, wait: _Wait, conn: "Connection") -> None:
        self.opened += 1
        channel = wait.channel = conn.forward(wait.destination)
        self._open.add(channel)
        channel.done.addCallback(self._gone, channel)
        channel.opened.addCallbacks(_fire, _fire, callbackArgs=(wait.result,),
                                    errbackArgs=(wait.result,))

    def _gone(self, ignored: None, channel: "ForwardChannel") -> None:
        self._open.discard(channel)
        self._changed()

    def _abandon(self, wait: _Wait) -> None:
        if wait.channel is not None:
            wait.channel.opened.cancel()
        elif wait in self._waits:
            self._waits.remove(wait)
            _cancel(wait.deadline)
            self._changed()

    def _expired(self, wait: _Wait) -> None:
        self._waits.remove(wait)
        error = self._last_error()
        why = f": {error}" if error else ""
        wait.result.errback(NotConnected(
            f"no connection to {self._name} within {self._connect_wait:g}s{why}"))
        self._changed()


def _cancel(deadline: IDelayedCall | None) -> None:
    if deadline is not None and deadline.active():
        deadline.cancel()


def _fire(outcome: "ForwardChannel | Failure", result: "Deferred[ForwardChannel]") -> None:
    """Pass the channel's open ``outcome`` (the channel or a Failure) on to ``result``."""
    if result.called:
        return
    if isinstance(outcome, Failure):
        result.errback(outcome)
    else:
        result.callback(outcome)
