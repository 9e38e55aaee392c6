"""Whether a Slurm client asks accounting (sacct, or slurmrestd's /slurmdb) at all."""

from twisted.internet.interfaces import IReactorTime

# Seconds DSSR believes Slurm saying it keeps no accounting before asking again.
ACCOUNTING_RECHECK = 600.0


class AccountingSwitch:
    """On, unless Slurm said it keeps no accounting less than ``ACCOUNTING_RECHECK``
    seconds of ``clock`` ago (a site may turn it on without restarting DSSR)."""

    def __init__(self, clock: IReactorTime):
        self._clock = clock
        self._off_at: float | None = None

    def on(self) -> bool:
        return self._off_at is None or self._clock.seconds() - self._off_at >= ACCOUNTING_RECHECK

    def off(self) -> None:
        """Slurm said it keeps no accounting: ask again in ``ACCOUNTING_RECHECK`` seconds."""
        self._off_at = self._clock.seconds()
