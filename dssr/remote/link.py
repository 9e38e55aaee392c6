"""One cluster user's connection to the login node, shared by all of that user's commands.

A ``Link`` dials, caps the channels open at once and queues the rest in order,
sends keepalives, and reconnects with backoff. It knows nothing of SSH itself: it
drives any connection object with ``execute``/``forward``/``ping``/``close``/``abort``
/``alive``/``lost`` (``dssr.remote.conch.Connection``, or a fake in tests).

Streams (forwarded channels) wait for the connection as commands do, but not for a
free channel: sshd's MaxSessions counts sessions (commands), not forwarded streams
(checked against OpenSSH 9.2 in tests/integration/test_forward.py).
"""

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from dssr.remote.interfaces import (
    AuthenticationFailed,
    ChannelRefused,
    CommandTimeout,
    HostKeyError,
    NotConnected,
    RemoteError,
    RemoteResult,
)
from dssr.remote.policy import Policy, backoff_delay
from dssr.remote.streams import Streams

if TYPE_CHECKING:  # what dial() gives; tests hand in fakes of it
    from dssr.remote.conch import Connection, ExecChannel
    from dssr.remote.forward import Destination, ForwardChannel

_log = Logger()

# Errors that retrying will not fix until an admin acts: commands waiting for a
# connection fail at once instead of waiting out their queue timeout.
_FATAL = (HostKeyError, AuthenticationFailed)


@dataclass
class _Job:
    command: bytes
    stdin: bytes | None
    timeout: float
    expires: float
    result: Deferred[RemoteResult]
    deadline: IDelayedCall | None = None


class Link:
    """``name``'s connection made by ``dial()``; ``persistent`` ones reconnect forever.

    Others connect on demand and close after ``policy.idle_timeout`` without work.
    """

    def __init__(
        self,
        dial: "Callable[[], Deferred[Connection]]",
        clock: IReactorTime,
        name: str,
        policy: Policy,
        persistent: bool,
        random: Callable[[], float] = random.random,
    ):
        self.name = name
        self.last_error: RemoteError | None = None
        self._dial = dial
        self._clock = clock
        self._policy = policy
        self._persistent = persistent
        self._random = random
        self._conn: Connection | None = None
        self._dialing: Deferred[Connection] | None = None
        self._retry: IDelayedCall | None = None
        self._idle: IDelayedCall | None = None
        self._keepalive: LoopingCall | None = None
        self._unanswered = 0
        self._attempt = 0
        self._stopped = False
        self._queue: deque[_Job] = deque()
        self._streams = Streams(clock, name, policy.connect_wait, self._idle_check,
                                lambda: self.last_error)
        # Channels that count against the server's MaxSessions: open ones, and closed
        # ones until a round trip proves the server has freed their session.
        self._channels: set[ExecChannel] = set()
        self._draining: list[ExecChannel] = []
        self._barrier = False
        self._held = False  # the server refused a channel: open none until one closes
        self._unhold_timer: IDelayedCall | None = None
        # What /metrics reports: logins made, commands started, commands that failed
        # to run or finish (not: ran and exited non-zero).
        self.logins = 0
        self.commands = 0
        self.failures = 0

    def state(self) -> tuple[str, str | None]:
        """``("connected" | "connecting" | "failed", last error or None)``."""
        if self._stopped:
            return "failed", "stopped"
        if self._conn is not None and self._conn.alive:
            return "connected", None
        error = str(self.last_error) if self.last_error else None
        return ("failed" if error and not self._dialing else "connecting"), error

    def start(self) -> None:
        """Connect in the background (never fails: errors go to ``state`` and the log)."""
        self._ensure_connecting()

    def run(self, command: bytes, stdin: bytes | None,
            timeout: float | None) -> Deferred[RemoteResult]:
        """Run a shell command line; fires with a ``RemoteResult`` or fails with ``RemoteError``."""
        if self._stopped:
            return fail(NotConnected(f"{self.name}: DSSR is shutting down"))
        if self._conn is None and self._retry is not None and isinstance(
                self.last_error, _FATAL):
            return fail(self.last_error)
        if timeout is None:
            timeout = self._policy.command_timeout
        wait = self._policy.queue_timeout if self._conn else self._policy.connect_wait
        job = _Job(command, stdin, timeout, self._clock.seconds() + wait, Deferred())
        self._enqueue(job)
        self._cancel_idle()
        self._ensure_connecting()
        self._pump()
        return job.result

    def stream(self, destination: "Destination") -> "Deferred[ForwardChannel]":
        """Open a stream to ``destination``; fires with the channel once the server agreed.

        Fails with ``NotConnected`` past ``connect_wait`` without a connection, with
        ``ForwardRefused`` when the server refuses. Cancelling it closes the stream.
        """
        if self._stopped:
            return fail(NotConnected(f"{self.name}: DSSR is shutting down"))
        if self._conn is None and self._retry is not None and isinstance(
                self.last_error, _FATAL):
            return fail(self.last_error)
        self._cancel_idle()
        conn = self._conn if self._conn is not None and self._conn.alive else None
        opened = self._streams.open_stream(destination, conn)
        self._ensure_connecting()
        return opened

    @property
    def streams(self) -> Streams:
        """This link's streams: ``opened`` so far, ``open()`` now."""
        return self._streams

    def stop(self) -> Deferred[None]:
        """Close the connection, fail waiting commands; fires once closed."""
        self._stopped = True
        for timer in (self._retry, self._idle, self._unhold_timer):
            _cancel(timer)
        self._retry = self._idle = self._unhold_timer = None
        if self._dialing is not None:
            self._dialing.cancel()
        self._fail_queue(NotConnected(f"{self.name}: DSSR is shutting down"))
        conn, self._conn = self._conn, None
        if conn is None:
            return succeed(None)
        self._stop_keepalive()
        return conn.close("DSSR is shutting down").addCallback(lambda _: None)

    # Connecting

    def _ensure_connecting(self) -> None:
        if not (self._stopped or self._conn or self._dialing or self._retry):
            self._connect()

    def _connect(self) -> None:
        self._retry = None
        dialing = self._dialing = self._dial()
        dialing.addCallbacks(self._connected, self._dial_failed)

    def _connected(self, conn: "Connection") -> None:
        self._dialing = None
        if self._stopped:
            conn.close("DSSR is shutting down")
            return
        self._conn = conn
        self._attempt = 0
        self.last_error = None
        self.logins += 1
        _log.info("SSH: connected to {name}", name=self.name)
        conn.lost.addCallback(self._lost, conn)
        self._start_keepalive()
        self._pump()
        self._streams.connected(conn)
        self._idle_check()

    def _dial_failed(self, failure: Failure) -> None:
        self._dialing = None
        if self._stopped and failure.check(CancelledError):
            return
        error = failure.value
        if not isinstance(error, RemoteError):
            error = NotConnected(f"cannot connect to {self.name}: {failure.getErrorMessage()}")
        self.last_error = error
        if isinstance(error, _FATAL):
            self._fail_queue(error)
        self._schedule_retry()

    def _lost(self, error: RemoteError, conn: "Connection") -> None:
        if conn is not self._conn:
            return  # closed on purpose (idle, stop)
        self._conn = None
        self._forget_channels()
        self._stop_keepalive()
        self._cancel_idle()
        self.last_error = error
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._stopped or not (self._persistent or self._queue):
            _log.warn("SSH: {error}", error=self.last_error)
            return
        delay = backoff_delay(
            self._attempt, self._policy.backoff_base, self._policy.backoff_cap, self._random)
        self._attempt += 1
        _log.warn("SSH: {error}; retrying in {delay:.1f}s", error=self.last_error, delay=delay)
        self._retry = self._clock.callLater(delay, self._connect)

    # Commands

    def _enqueue(self, job: _Job, first: bool = False) -> None:
        wait = max(0.0, job.expires - self._clock.seconds())
        job.deadline = self._clock.callLater(wait, self._expire, job)
        if first:
            self._queue.appendleft(job)
        else:
            self._queue.append(job)

    def _pump(self) -> None:
        """Start waiting commands, oldest first, while channels are free."""
        while (self._conn is not None and self._conn.alive and self._queue and not self._held
               and len(self._channels) < self._policy.max_channels):
            job = self._queue.popleft()
            _cancel(job.deadline)  # active: a job leaves the queue when it expires
            self._start(job)

    def _start(self, job: _Job) -> None:
        conn = self._conn
        assert conn is not None  # _pump starts jobs only on a connection
        self.commands += 1
        channel = conn.execute(job.command, job.stdin, self._policy.max_output)
        self._channels.add(channel)
        timer = None
        if job.timeout:
            timer = self._clock.callLater(job.timeout, channel.stop, CommandTimeout(
                f"the command ran longer than {job.timeout:g}s on {self.name} and was cut off"))
        channel.result.addBoth(self._finished, job, channel, timer)
        channel.done.addCallback(self._released, channel, conn)

    def _finished(self, result: RemoteResult | Failure, job: _Job, channel: "ExecChannel",
                  timer: IDelayedCall | None) -> None:
        _cancel(timer)
        if isinstance(result, Failure) and result.check(ChannelRefused):
            # The server is at its session limit (other clients, or killed commands
            # still exiting): wait for one of our channels to close, then try again.
            _log.warn("SSH: {name} refused a session; waiting for one to close", name=self.name)
            self._channels.discard(channel)
            self._enqueue(job, first=True)
            self._hold()
        elif isinstance(result, Failure):
            self.failures += 1
            job.result.errback(result)
        else:
            job.result.callback(result)

    def _released(self, ignored: None, channel: "ExecChannel", conn: "Connection") -> None:
        if channel not in self._channels:
            return  # refused, or its connection is gone
        if conn is not self._conn or not conn.alive:
            self._channels.discard(channel)
            return
        self._draining.append(channel)
        if not self._barrier:
            self._send_barrier()

    def _send_barrier(self) -> None:
        # sshd frees a session a little after both sides closed its channel; once a
        # request sent after the close is answered, the session is surely free, so
        # a new channel cannot push the server past MaxSessions.
        batch, self._draining = self._draining, []
        self._barrier = True
        conn = self._conn
        assert conn is not None  # _released drains only the live connection's channels
        conn.ping().addCallback(self._barrier_passed, batch, conn)

    def _barrier_passed(self, ignored: None, batch: "list[ExecChannel]",
                        conn: "Connection") -> None:
        if conn is not self._conn:
            return
        self._barrier = False
        self._channels.difference_update(batch)
        self._unhold()
        if self._draining:
            self._send_barrier()
        self._idle_check()

    def _hold(self) -> None:
        self._held = True
        if not self._channels and self._unhold_timer is None:
            # None of ours will close: the sessions belong to others; try again later.
            self._unhold_timer = self._clock.callLater(self._policy.refused_retry, self._unhold)

    def _unhold(self) -> None:
        _cancel(self._unhold_timer)
        self._unhold_timer = None
        self._held = False
        self._pump()

    def _forget_channels(self) -> None:
        self._channels.clear()
        self._draining.clear()
        self._barrier = False
        _cancel(self._unhold_timer)
        self._unhold_timer = None
        self._held = False

    def _expire(self, job: _Job) -> None:
        self._queue.remove(job)
        if self._conn is None:
            why = f": {self.last_error}" if self.last_error else ""
            error: RemoteError = NotConnected(f"no connection to {self.name} within "
                                              f"{self._policy.connect_wait:g}s{why}")
        else:
            error = CommandTimeout(f"no free channel to {self.name} within "
                                   f"{self._policy.queue_timeout:g}s "
                                   f"(all {self._policy.max_channels} busy)")
        job.result.errback(error)
        self._idle_check()

    def _fail_queue(self, error: RemoteError) -> None:
        self._streams.fail(error)
        while self._queue:
            job = self._queue.popleft()
            _cancel(job.deadline)
            job.result.errback(error)

    # Keepalive and idle close

    def _start_keepalive(self) -> None:
        if not self._policy.keepalive:
            return
        self._unanswered = 0
        self._keepalive = LoopingCall(self._ping)
        self._keepalive.clock = self._clock
        self._keepalive.start(self._policy.keepalive, now=False)

    def _stop_keepalive(self) -> None:
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()
        self._keepalive = None

    def _ping(self) -> None:
        conn = self._conn
        assert conn is not None  # keepalives run while connected
        if self._unanswered >= self._policy.keepalive_misses:
            conn.abort(f"no answer to {self._unanswered} keepalives "
                       f"({self._policy.keepalive:g}s apart)")
            return
        self._unanswered += 1
        conn.ping().addCallback(self._answered, conn)

    def _answered(self, ignored: None, conn: "Connection") -> None:
        if conn is self._conn:
            self._unanswered = 0

    def _idle_check(self) -> None:
        if (self._persistent or self._conn is None or self._queue or self._channels
                or self._streams.busy() or self._idle is not None):
            return
        self._idle = self._clock.callLater(self._policy.idle_timeout, self._close_idle)

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _close_idle(self) -> None:
        self._idle = None
        conn, self._conn = self._conn, None
        assert conn is not None  # _idle_check sets the timer only while connected
        self._stop_keepalive()
        _log.info("SSH: closing idle connection to {name}", name=self.name)
        conn.close(f"idle for {self._policy.idle_timeout:g}s")


def _cancel(timer: IDelayedCall | None) -> None:
    if timer is not None and timer.active():
        timer.cancel()
