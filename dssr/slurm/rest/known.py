"""The Jarvice jobs between two full listings: what the last ``GET .../jobs`` said of
them, kept current by ``GET .../jobs/state`` (every job's id and state) and
``GET .../job/{id}`` for each job that is new or changed state.

slurmrestd renders every field of every job in a full listing: at 5000 jobs that is
42 MB and 2-3 s of its CPU (v0.0.45), where ``squeue`` takes 0.05 s. Every field DSSR
answers from (``shrink.FIELDS``) is fixed while its state is: its name, owner and
start; its nodes and end come with a new state; its run time is counted from them (a
pending job's reason may change meanwhile: ``QueueJob.reason`` answers nothing). So
a snapshot asks for the states, shows the few jobs that changed one by one, and lists
everything again only when it knows nothing yet, when too many jobs changed for one by
one to be cheaper, or ``RELIST`` seconds after the last listing (what a state cannot
show, such as a job renamed or requeued and started again between two snapshots, is
then seen within that time).

Pure: the caller makes the requests. Only plain job ids (``123``) are shown one by one;
an array task's or a heterogeneous job's state id (``123_4``, ``123+1``) is never a job
DSSR submitted.
"""

from collections.abc import Mapping
from typing import Any

# Seconds after which a snapshot lists every job again.
RELIST = 60.0
# Jobs a snapshot may show one by one: at least this many, or one in ``SHARE`` of the
# queue (each costs slurmrestd a request; a full listing costs it about one per job).
FEW = 16
SHARE = 50


def _plain(key: str) -> bool:
    """Whether a state's id is a plain job id, as DSSR's jobs have."""
    return key.isascii() and key.isdigit()


class KnownJobs:
    """The Jarvice jobs (cut to ``shrink.FIELDS``) by job id, and the ids known not to
    be Jarvice jobs (or not visible), as of the last snapshot."""

    def __init__(self, relist: float = RELIST):
        self._relist = relist
        self._jobs: dict[str, dict[str, Any]] = {}
        self._others: set[str] = set()
        self._listed: float | None = None

    def to_show(self, states: Mapping[str, object], now: float) -> list[str] | None:
        """The ids to show one by one so that ``jobs(states)`` is current, or None when
        a full listing is due instead."""
        if self._listed is None or now - self._listed >= self._relist:
            return None
        wanted = [key for key, state in states.items()
                  if (self._jobs[key].get("job_state") != state if key in self._jobs
                      else key not in self._others and _plain(key))]
        return wanted if len(wanted) <= max(FEW, len(states) // SHARE) else None

    def listed(self, states: Mapping[str, object], jobs: list[dict[str, Any]],
               now: float) -> None:
        """After a full listing of the Jarvice ``jobs``, whose ``states`` were taken just
        before it: every other id of ``states`` is not a Jarvice job."""
        self._jobs = {str(job.get("job_id")): job for job in jobs}
        self._others = set(states) - set(self._jobs)
        self._listed = now

    def shown(self, key: str, job: dict[str, Any] | None) -> None:
        """After ``GET .../job/{key}``: the Jarvice job it showed, or None (not a
        Jarvice job, not visible, or gone)."""
        if job is None:
            self._jobs.pop(key, None)
            self._others.add(key)
        else:
            self._jobs[key] = job
            self._others.discard(key)

    def jobs(self, states: Mapping[str, object]) -> list[dict[str, Any]]:
        """The Jarvice jobs still in ``states``; the ids gone from it are forgotten."""
        self._jobs = {key: job for key, job in self._jobs.items() if key in states}
        self._others.intersection_update(states)
        return list(self._jobs.values())

    def forget(self) -> None:
        """Know nothing: the next snapshot lists every job (slurmrestd changed)."""
        self._jobs, self._others, self._listed = {}, set(), None
