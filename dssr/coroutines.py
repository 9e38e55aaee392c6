"""Running coroutines side by side, and one at a time per key, on Deferreds."""

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

from twisted.internet.defer import DeferredLock, FirstError, ensureDeferred, gatherResults
from twisted.python.failure import Failure

T = TypeVar("T")


def _first_error(failure: Failure) -> Failure:
    failure.trap(FirstError)
    return cast(FirstError, failure.value).subFailure


async def concurrently(*coroutines: Coroutine[Any, Any, Any]) -> list[Any]:
    """Await coroutines side by side; the first to fail raises its own error."""
    return await gatherResults([ensureDeferred(c) for c in coroutines],
                               consumeErrors=True).addErrback(_first_error)


async def settled(*coroutines: Coroutine[Any, Any, Any]) -> list[Any]:
    """Await coroutines side by side; each one's result, or the exception it raised."""
    return await gatherResults([ensureDeferred(c).addErrback(lambda failure: failure.value)
                                for c in coroutines])


class KeyedLocks:
    """One ``DeferredLock`` per key, dropped again when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, DeferredLock] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """``await work()`` once every earlier ``run`` with ``key`` has finished."""
        lock = self._locks.setdefault(key, DeferredLock())
        await lock.acquire()
        try:
            return await work()
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(key, None)
