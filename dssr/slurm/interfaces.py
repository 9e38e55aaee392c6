"""``ISlurm``: what the Slurm connector asks of Slurm, and the values it trades in.

One implementation per way of talking to Slurm: ``dssr.slurm.cli`` runs Slurm's
commands over an ``IRemote``; a slurmrestd client would be another. The connector
knows only this interface, so the legacy API's semantics are written once.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from twisted.application.service import IService
from zope.interface import Attribute, Interface

from dssr.samples import Sample

# Slurm job names of Jarvice jobs: the prefix, then the Jarvice name. Cluster admins
# filter on it, and the queue snapshot keeps only jobs that carry it.
JOB_PREFIX = "jarvice_"


@dataclass(frozen=True)
class BatchJob:
    """One batch job to submit, in Slurm's terms (sbatch options, slurmrestd job fields)."""

    name: str  # the Slurm job name: JOB_PREFIX and the Jarvice name
    script: str = field(repr=False)  # the ``#!/bin/bash`` batch script; holds credentials
    output: str  # the output file (relative: below the submitting user's home)
    nodes: int
    tasks: int
    partition: str = ""
    memory_gb: int = 0  # per node; 0: the partition's default
    gpus_per_node: int = 0
    exclusive: bool = True
    walltime: str = ""  # Slurm's time format; empty: the partition's limit
    licenses: str = ""
    held: bool = False
    extra: tuple[tuple[str, str], ...] = ()  # further sbatch long options; "" value: a flag


# The exit status a ``Setup`` program gives for "not now, try again" (EX_TEMPFAIL).
SETUP_BUSY = 75


@dataclass(frozen=True)
class Setup:
    """A constant shell program (``sh -c``) that wraps a submission.

    It gets its ``args``, then the submit command's argv, which it runs itself (so it
    can act before and after it); what it prints is taken as that command's output.
    Request data reaches it only as arguments. Exit ``SETUP_BUSY``: try again later.
    """

    program: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class QueueJob:
    """One Jarvice job in the queue snapshot."""

    jobid: str
    state: str  # long name, e.g. PENDING
    elapsed: str  # HH:MM:SS, hours may exceed 24
    nodes: tuple[str, ...]  # expanded host names; empty while pending
    owner: str  # the cluster user the job runs as
    reason: str  # why it is pending, e.g. JobHeldUser; "None" otherwise
    name: str  # the Jarvice job name, without the jarvice_ prefix


@dataclass(frozen=True)
class AccountingRecord:
    """One ended job as Slurm's accounting reports it."""

    state: str  # long name, e.g. CANCELLED (sacct's "by UID" dropped)
    exit_code: int
    signal: int
    elapsed: str  # HH:MM:SS
    name: str  # the Slurm job name, e.g. JOB_PREFIX and the Jarvice name


class Refused(Exception):
    """Slurm answered, and said no; the message says who refused and why.

    ``unknown_job`` is true when the refusal is that Slurm has no such job.
    """

    def __init__(self, message: str, unknown_job: bool = False):
        super().__init__(message)
        self.unknown_job = unknown_job


class ISlurm(Interface):
    """Slurm as the connector needs it, acting as the service account or a mapped user.

    ``submit`` to ``ping`` are coroutines. A Slurm that cannot be asked (transport
    down, controller not answering, output not understood) raises
    ``dssr.errors.Unavailable``; one that answers no raises ``Refused``. ``user``
    names a mapped cluster user (None: the service account).
    """

    service: IService | None = Attribute(
        "An IService to start and stop with the process, or None.")

    async def submit(job: BatchJob, user: str | None = None,
                     setup: Setup | None = None) -> str:
        """Submit the ``BatchJob`` as ``user``; the job id (a str).

        ``setup`` (a ``Setup``), run as the same user, wraps the submission in one
        round trip; it may answer with an earlier submission's job id instead.
        """

    async def queue() -> list[QueueJob]:
        """Every Jarvice job Slurm still knows, as a list of ``QueueJob``: one snapshot."""

    async def job(jobid: str, user: str | None = None) -> QueueJob | None:
        """The ``QueueJob`` of that id as ``user`` sees the queue, or None (not a Jarvice
        job, or forgotten by Slurm).

        For a mapped user's job the service account may not see (``PrivateData=jobs``
        hides other users' jobs from all but their accounts' coordinators).
        """

    async def cancel(jobid: str, user: str | None = None) -> None:
        """Cancel a job, pending or running."""

    async def release(jobid: str, user: str | None = None) -> None:
        """Release a held job (``Refused(unknown_job=True)`` if Slurm has no such job)."""

    async def show(jobid: str) -> str:
        """Slurm's human-readable description of one job (a str; its error if unknown)."""

    async def accounting(jobid: str, user: str | None = None) -> AccountingRecord | None:
        """The job's ``AccountingRecord`` as ``user`` sees it (the owner sees its own jobs
        whatever ``PrivateData`` hides), or None: no accounting, no record, or accounting
        could not be asked (then the end record decides; this is logged)."""

    async def ping() -> None:
        """Return once a Slurm controller answers; else ``Unavailable`` saying why."""

    def unready() -> str | None:
        """Why Slurm cannot be asked right now without waiting (a str), or None."""

    def metrics() -> Iterable[Sample]:
        """``dssr.samples.Sample`` values for ``/metrics`` (none if nothing to report)."""
