"""``ISlurm`` as Slurm's own commands (sbatch, squeue, scancel, scontrol, sacct) over an
``IRemote``: argv from ``dssr.slurm.commands``, output read by ``dssr.slurm.parse``."""

import secrets
from collections.abc import Iterable

from twisted.application.service import IService
from twisted.logger import Logger
from zope.interface import implementer

from dssr.errors import Unavailable
from dssr.remote.interfaces import RemoteResult
from dssr.remote.logged import LoggedRemote
from dssr.remote.output import first_line
from dssr.samples import Sample
from dssr.slurm import commands
from dssr.slurm.accounting import ACCOUNTING_RECHECK, AccountingSwitch
from dssr.slurm.interfaces import (
    SETUP_BUSY,
    AccountingRecord,
    BatchJob,
    ISlurm,
    QueueJob,
    Refused,
    Setup,
)
from dssr.slurm.parse import (
    SlurmOutputError,
    accounting_disabled,
    controller_busy,
    controller_down,
    parse_ping,
    parse_sacct,
    parse_sbatch,
    parse_snapshot,
)

_log = Logger(namespace="dssr.slurm")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def with_setup(setup: Setup, argv: list[str]) -> list[str]:
    """One command running ``setup`` around ``argv``: one round trip."""
    return ["sh", "-c", setup.program, "sh", *setup.args, *argv]


def _listed(result: RemoteResult, token: str) -> tuple[list[QueueJob], list[str]]:
    """``parse_snapshot`` of a listing made with ``token``; ``Unavailable`` if garbled."""
    try:
        return parse_snapshot(_text(result.stdout), token)
    except SlurmOutputError as error:
        raise Unavailable(f"squeue output not understood: {error}") from None


@implementer(ISlurm)
class CLISlurm:
    """Slurm's commands run on the login node through ``commands``; the queue lists
    the jobs of ``users`` (the service account and the mapped users; none: the
    account ``commands`` runs as)."""

    def __init__(self, commands: LoggedRemote, users: tuple[str, ...] = ()):
        self._commands = commands
        self._users = users
        self._accounting = AccountingSwitch(commands.clock)
        self._skipped: set[str] = set()

    @property
    def service(self) -> IService | None:
        return self._commands.remote.service

    async def _slurm(self, argv: list[str], stdin: bytes | None = None, user: str | None = None,
                     name: str | None = None) -> RemoteResult:
        """Run Slurm command ``name`` (default: ``argv[0]``); a controller that does not
        answer is ``Unavailable``."""
        result = await self._commands.run(argv, stdin=stdin, user=user)
        if not result.ok and controller_down(_text(result.stderr)):
            raise Unavailable(f"{name or argv[0]}: Slurm controller not answering: "
                              f"{first_line(result.stderr)}")
        if not result.ok and controller_busy(_text(result.stderr)):
            raise Unavailable(f"{name or argv[0]}: Slurm asks to try again later: "
                              f"{first_line(result.stderr)}")
        return result

    async def submit(self, job: BatchJob, user: str | None = None,
                     setup: Setup | None = None) -> str:
        argv = commands.sbatch(job)
        if setup is not None:
            argv = with_setup(setup, argv)
        result = await self._slurm(argv, stdin=job.script.encode("utf-8"), user=user,
                                   name="sbatch")
        if result.status == SETUP_BUSY:
            raise Unavailable(f"submit: {first_line(result.stderr)}")
        if not result.ok:
            raise Refused(f"sbatch refused the job: {first_line(result.stderr)}")
        try:
            return parse_sbatch(_text(result.stdout))
        except SlurmOutputError as error:
            raise Unavailable(str(error)) from None

    async def queue(self) -> list[QueueJob]:
        token = secrets.token_hex(8)
        result = await self._commands.run(commands.squeue_snapshot(self._users, token))
        if not result.ok:
            raise Unavailable(f"squeue failed (exit {result.status}): "
                              f"{first_line(result.stderr)}")
        jobs, skipped = _listed(result, token)
        self._log_skipped(skipped)
        return jobs

    def _log_skipped(self, jobids: list[str]) -> None:
        """Say once per job that it is left out of the queue (its name is not a Jarvice
        name); forget jobs Slurm no longer lists."""
        new = [jobid for jobid in jobids if jobid not in self._skipped]
        if new:
            _log.warn("jobs {jobids} are named jarvice_ with control characters in the "
                      "name: not DSSR's, left out of the queue", jobids=", ".join(new))
        self._skipped = set(jobids)

    async def job(self, jobid: str, user: str | None = None) -> QueueJob | None:
        token = secrets.token_hex(8)
        result = await self._slurm(commands.squeue_job(jobid, token), user=user)
        jobs = _listed(result, token)[0] if result.ok else []
        return next((job for job in jobs if job.jobid == jobid), None)

    async def cancel(self, jobid: str, user: str | None = None) -> None:
        result = await self._slurm(commands.scancel(jobid), user=user)
        if not result.ok:
            raise Refused(f"scancel refused: {first_line(result.stderr)}")

    async def release(self, jobid: str, user: str | None = None) -> None:
        result = await self._slurm(commands.scontrol_release(jobid), user=user)
        if not result.ok:
            if b"invalid job id" in result.stderr.lower():
                raise Refused(f"job {jobid} left the queue", unknown_job=True)
            raise Refused(f"scontrol release refused: {first_line(result.stderr)}")

    async def show(self, jobid: str) -> str:
        result = await self._slurm(commands.scontrol_show_job(jobid))
        return _text(result.stdout if result.ok else result.stderr)

    async def accounting(self, jobid: str, user: str | None = None) -> AccountingRecord | None:
        if not self._accounting.on():
            return None
        # Not _slurm: sacct asks slurmdbd, and slurmdbd down is no reason for a 503.
        result = await self._commands.run(commands.sacct_job(jobid, self._users), user=user)
        if not result.ok:
            if accounting_disabled(_text(result.stderr)):
                _log.info("sacct: accounting is disabled; using end records (asking again "
                          "in {minutes:g} minutes)", minutes=ACCOUNTING_RECHECK / 60)
                self._accounting.off()
            else:
                _log.warn("sacct failed for job {jobid} (exit {status}): {error}; its end "
                          "record decides how it ended", jobid=jobid, status=result.status,
                          error=first_line(result.stderr))
            return None
        try:
            return parse_sacct(_text(result.stdout))
        except SlurmOutputError as error:
            _log.warn("{error}; job {jobid}'s end record decides how it ended",
                      error=error, jobid=jobid)
            return None

    async def ping(self) -> None:
        result = await self._slurm(commands.scontrol_ping())
        if not result.ok or not parse_ping(_text(result.stdout)):
            raise Unavailable(f"Slurm controller is not up: {first_line(result.stdout)}")

    def unready(self) -> str | None:
        return self._commands.unready()

    def metrics(self) -> Iterable[Sample]:
        return self._commands.remote.metrics()
