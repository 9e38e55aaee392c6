"""One queue snapshot shared by every caller (docs/architecture.rst, decisions).

Upstream polls ``/running``, ``/queued`` and ``/runstatus`` for every job on every
pass. All of them read one snapshot: concurrent callers share the fetch in flight,
a finished snapshot is reused for ``ttl`` seconds, and ``invalidate()`` (after a
submit, terminate or release) makes the next caller fetch anew. A failed fetch is
never cached: every waiter gets the failure and the next caller tries again.

A slow scheduler: past the TTL but younger than ``max_stale`` seconds, callers get
the cached snapshot at once while one refresh runs in the background. Past
``max_stale``, or once a refresh failed, they wait for a fetch (and get its
failure), as without it.
"""

from collections.abc import Callable
from typing import Generic, TypeVar, cast

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

T = TypeVar("T")


class Snapshot(Generic[T]):
    """A cached, shared result of ``fetch()`` (a function returning a Deferred)."""

    def __init__(self, fetch: Callable[[], Deferred[T]], clock: IReactorTime, ttl: float,
                 max_stale: float = 0.0):
        self._fetch = fetch
        self._clock = clock
        self.ttl = ttl
        self.max_stale = max_stale
        self.stale_served = 0
        self._value: T | None = None
        self._taken_at: float | None = None
        self._generation = 0
        self._in_flight: tuple[int, list[Deferred[T]]] | None = None
        self.fetches = 0
        self.shared = 0

    @property
    def age(self) -> float | None:
        """Seconds since the cached snapshot was taken; None without one."""
        if self._taken_at is None:
            return None
        return self._clock.seconds() - self._taken_at

    @property
    def cached(self) -> T | None:
        """The cached snapshot, whatever its age; None without one."""
        return self._value

    def invalidate(self) -> None:
        """Forget the cached snapshot; a fetch already in flight is not joined any more."""
        self._value, self._taken_at = None, None
        self._generation += 1

    def get(self, max_age: float | None = None) -> Deferred[T]:
        """Fire with a snapshot younger than ``max_age`` seconds (default: the TTL).

        ``max_age=0`` always fetches anew (or joins a fetch started since the last
        ``invalidate()``).
        """
        age = self.age
        if age is not None and 0 <= age < (self.ttl if max_age is None else max_age):
            self.shared += 1
            return succeed(self._fresh())
        joinable = self._in_flight is not None and self._in_flight[0] == self._generation
        if max_age is None and age is not None and 0 <= age < self.max_stale:
            if not joinable:
                self._start().addErrback(lambda _: None)  # its failure drops the cache
            self.stale_served += 1
            return succeed(self._fresh())
        if self._in_flight is not None and joinable:
            self.shared += 1
            waiter: Deferred[T] = Deferred()
            self._in_flight[1].append(waiter)
            return waiter
        return self._start()

    def _fresh(self) -> T:
        """The cached snapshot, known to be there (it has an age)."""
        return cast(T, self._value)

    def _start(self) -> Deferred[T]:
        generation, started = self._generation, self._clock.seconds()
        waiters: list[Deferred[T]] = [Deferred()]
        first = waiters[0]
        self._in_flight = (generation, waiters)
        self.fetches += 1

        def finish(result: T | Failure) -> None:
            if self._in_flight is not None and self._in_flight[1] is waiters:
                self._in_flight = None
            if generation == self._generation:
                # A failed refresh drops the cache: nobody gets a stale answer after it.
                self._value, self._taken_at = ((None, None) if isinstance(result, Failure)
                                               else (result, started))
            for waiter in waiters:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)

        maybeDeferred(self._fetch).addBoth(finish)
        return first
