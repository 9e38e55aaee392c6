"""The log of what the edge refused, kept readable and cheap under a flood."""

from collections import Counter

from twisted.logger import Logger

_log = Logger(namespace="dssr.edge")


class RefusalLog:
    """Each refusal at debug; at info, the first of a spell, then a count per status
    every ``period`` seconds while refusals go on.

    Anyone can make the edge refuse requests at will: a line each would be a log
    flood, and writing thousands at once (1490 header deadlines passing together)
    would stall the reactor for a tenth of a second.
    """

    def __init__(self, clock, period: float = 60.0):
        self._clock = clock
        self._period = period
        self._counts: Counter[int] = Counter()
        self._summary = None

    def note(self, status: int, method: str, path: str, reason: str) -> None:
        _log.debug("{method} {path} -> {status} at the edge: {reason}", method=method,
                   path=path, status=status, reason=reason)
        if self._summary is None:
            _log.info("{method} {path} -> {status} at the edge: {reason} (further refusals "
                      "are counted once a minute)", method=method, path=path, status=status,
                      reason=reason)
            self._summary = self._clock.callLater(self._period, self._sum_up)
        else:
            self._counts[status] += 1

    def _sum_up(self) -> None:
        if not self._counts:
            self._summary = None
            return
        counts = ", ".join(f"{count} x {status}" for status, count in sorted(self._counts.items()))
        _log.info("refused at the edge in the last {period:g} s: {counts}",
                  period=self._period, counts=counts)
        self._counts.clear()
        self._summary = self._clock.callLater(self._period, self._sum_up)

    def stop(self) -> None:
        """Cancel the pending summary (the service is stopping)."""
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
        self._summary = None
