"""How a Slurm job ended, from the best witness there is: the exit verdict chain.

Slurm's queue while it still holds the job, else accounting (when the cluster has
it, and it says the job ended), else the end record the batch script left beside the
output, else the marker ``/terminate`` left, else unknown (-9). So ``/exitstatus`` is
right after Slurm purged the job, without slurmdbd, and after DSSR restarted. A job
that accounting says is live but that the queue does not show is not called ended.
"""

from twisted.logger import Logger

from dssr.errors import Unavailable
from dssr.jobfiles import EndRecord
from dssr.jobs import UNKNOWN_EXIT, ExitStatus, JobRef, hms
from dssr.slurm.interfaces import JOB_PREFIX, AccountingRecord, QueueJob
from dssr.slurm.states import Category, category, exit_code

_log = Logger(namespace="dssr.slurm")


def this_jobs_record(ref: JobRef, accounted: AccountingRecord | None
                     ) -> AccountingRecord | None:
    """``accounted`` if it is job ``ref``'s: only a record of its name counts (job ids
    come round again while accounting keeps the old ones)."""
    if accounted is not None and accounted.name != JOB_PREFIX + ref.name:
        _log.warn("sacct: job {jobid} is named {other!r} in accounting, not "
                  "{prefix}{name}: an older job of that id; not using its record",
                  jobid=ref.jobid, other=accounted.name, prefix=JOB_PREFIX, name=ref.name)
        return None
    return accounted


def coordinate(account: str) -> str:
    """How ``account`` gets to see jobs that ``PrivateData=jobs`` hides from it."""
    return (f"coordinate the job's account (sacctmgr add coordinator account=ACCOUNT "
            f"names={account})")


def verdict(jobid: str, queued: QueueJob | None, accounted: AccountingRecord | None,
            record: EndRecord | None, cancelled: bool, service_user: str) -> ExitStatus:
    """The ``ExitStatus`` (without output) the first witness present gives.

    ``Unavailable`` when accounting has the job live and nothing says it ended: calling
    it ended would collect a running job's output.
    """
    if queued is not None:
        return ExitStatus(exit_code(queued.state), queued.elapsed, queued.state)
    if accounted is not None and category(accounted.state) == Category.ENDED:
        return ExitStatus(exit_code(accounted.state), accounted.elapsed, accounted.state)
    if record is not None:
        return ExitStatus(exit_code(record.state), hms(record.seconds), record.state)
    if accounted is not None:
        # Live in accounting, absent from the queue: the service account cannot see it
        # (PrivateData=jobs), or accounting lost track of it.
        raise Unavailable(f"job {jobid} is {accounted.state} in Slurm's accounting but not in "
                          f"the queue: with PrivateData=jobs the service account must "
                          f"{coordinate(service_user or 'USER')}; else see `sacctmgr show "
                          f"runawayjobs`")
    if cancelled:
        return ExitStatus(-15, "00:00:00", "CANCELLED")
    return UNKNOWN_EXIT
