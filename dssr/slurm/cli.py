"""``ISlurm`` as Slurm's own commands (sbatch, squeue, scancel, scontrol, sacct) over an
``IRemote``: argv from ``dssr.slurm.commands``, output read by ``dssr.slurm.parse``."""

from twisted.logger import Logger
from zope.interface import implementer

from dssr.errors import Unavailable
from dssr.remote.interfaces import RemoteResult
from dssr.remote.logged import LoggedRemote
from dssr.remote.output import first_line
from dssr.slurm import commands
from dssr.slurm.interfaces import (
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
    """One command running ``setup``, then (if it succeeded) ``argv``: one round trip."""
    program = f'{setup.program} && shift {len(setup.args)} && exec "$@"'
    return ["sh", "-c", program, "sh", *setup.args, *argv]


@implementer(ISlurm)
class CLISlurm:
    """Slurm's commands run on the login node through ``commands``."""

    def __init__(self, commands: LoggedRemote):
        self._commands = commands
        self._accounting = True

    @property
    def service(self):
        return self._commands.remote.service

    async def _slurm(self, argv, stdin: bytes | None = None, user: str | None = None,
                     name: str | None = None) -> RemoteResult:
        """Run Slurm command ``name`` (default: ``argv[0]``); a controller that does not
        answer is ``Unavailable``."""
        result = await self._commands.run(argv, stdin=stdin, user=user)
        if not result.ok and controller_down(_text(result.stderr)):
            raise Unavailable(f"{name or argv[0]}: Slurm controller not answering: "
                              f"{first_line(result.stderr)}")
        return result

    async def submit(self, job: BatchJob, user: str | None = None,
                     setup: Setup | None = None) -> str:
        argv = commands.sbatch(job)
        if setup is not None:
            argv = with_setup(setup, argv)
        result = await self._slurm(argv, stdin=job.script.encode("utf-8"), user=user,
                                   name="sbatch")
        if not result.ok:
            raise Refused(f"sbatch refused the job: {first_line(result.stderr)}")
        try:
            return parse_sbatch(_text(result.stdout))
        except SlurmOutputError as error:
            raise Unavailable(str(error)) from None

    async def queue(self) -> list[QueueJob]:
        result = await self._commands.run(commands.squeue_snapshot())
        if not result.ok:
            raise Unavailable(f"squeue failed (exit {result.status}): "
                              f"{first_line(result.stderr)}")
        try:
            return parse_snapshot(_text(result.stdout))
        except SlurmOutputError as error:
            raise Unavailable(f"squeue output not understood: {error}") from None

    async def job(self, jobid: str, user: str | None = None) -> QueueJob | None:
        result = await self._slurm(commands.squeue_job(jobid), user=user)
        try:
            jobs = parse_snapshot(_text(result.stdout)) if result.ok else []
        except SlurmOutputError as error:
            raise Unavailable(f"squeue output not understood: {error}") from None
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
        if not self._accounting:
            return None
        # Not _slurm: sacct asks slurmdbd, and slurmdbd down is no reason for a 503.
        result = await self._commands.run(commands.sacct_job(jobid), user=user)
        if not result.ok:
            if accounting_disabled(_text(result.stderr)):
                _log.info("sacct: accounting is disabled; using end records from now on")
                self._accounting = False
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
        state, error = self._commands.remote.state()
        if state == "connected":
            return None
        return f"SSH {state}" + (f": {error}" if error else "")

    def metrics(self):
        return self._commands.remote.metrics()
