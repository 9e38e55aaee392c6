"""``ISlurm`` over slurmrestd: queue snapshots (``GET .../jobs/state`` and the jobs that
changed, a full ``GET .../jobs`` now and then: ``known``), jobs submitted, cancelled and
released through REST as their owners, each with its own token.

The job files (and so the setup before a submit, which also tells the user's home)
still go through the ``IRemote`` commands. The OpenAPI version is the configured one,
else detected from the server's OpenAPI document before the first request and again
after slurmrestd could not be reached (it may have come back as a newer Slurm).
"""

import secrets
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredSemaphore, FirstError, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from dssr.errors import Unavailable
from dssr.jobs import JOBID
from dssr.remote.logged import LoggedRemote
from dssr.remote.output import first_line
from dssr.samples import Sample
from dssr.slurm.accounting import ACCOUNTING_RECHECK, AccountingSwitch
from dssr.slurm.cli import with_setup
from dssr.slurm.interfaces import (
    SETUP_BUSY,
    AccountingRecord,
    BatchJob,
    ISlurm,
    QueueJob,
    Refused,
    Setup,
)
from dssr.slurm.rest import answers
from dssr.slurm.rest.answers import (
    ACCESS_DENIED,
    ALREADY_DONE,
    INVALID_JOB_ID,
    NOT_THE_OWNER,
    AnswerError,
)
from dssr.slurm.rest.bodies import job_body
from dssr.slurm.rest.client import Answer, ClientService, RestClient
from dssr.slurm.rest.known import KnownJobs
from dssr.slurm.rest.tokens import Tokens
from dssr.slurm.rest.versions import choose, typed

_log = Logger(namespace="dssr.slurm")
# What a submit's claim holds until slurmrestd gave the job id (never all digits).
PENDING = "pending-"
# Print mark $1 and the user's home.
MARK_HOME = 'printf "%s%s\\n" "$1" "$HOME"'
# Record job id $2 in claim $1 (one short write: a reader sees it empty or whole).
RECORD = 'printf "%s\\n" "$2" > "$1"'
# How slurmrestd signals a job it is asked to cancel: as scancel does (SIGKILL is
# Slurm's "terminate": SIGTERM to the batch shell, SIGKILL after KillWait; CANCELLED).
CANCEL_SIGNAL = "KILL"
# Jobs a snapshot shows at once (``GET .../job/{id}``), to spare slurmrestd's threads.
SHOWN_AT_ONCE = 4
T = TypeVar("T")


def _jobid(jobid: str) -> str:
    if not JOBID.fullmatch(jobid):
        raise ValueError(f"not a Slurm job id: {jobid!r}")
    return jobid


@implementer(ISlurm)
class RestSlurm:
    """Slurm through ``client`` (a ``RestClient``) with tokens from ``tokens``, acting as
    ``service_user`` or a mapped user; ``commands`` (a ``LoggedRemote``) runs the setup
    before each submit. ``version`` pins the OpenAPI version (empty: detected)."""

    def __init__(self, client: RestClient, tokens: Tokens, commands: LoggedRemote,
                 clock: IReactorTime, service_user: str, version: str = ""):
        self._client = client
        self._tokens = tokens
        self._commands = commands
        self._clock = clock
        self._service_user = service_user
        self._pinned = version
        self.version = version
        self._accounting = AccountingSwitch(clock)
        self._known = KnownJobs()
        self._without_states = False  # slurmrestd has no jobs/state in this version
        self._showing = DeferredSemaphore(SHOWN_AT_ONCE)
        self.listings = 0
        self.shown = 0
        self.service = MultiService()
        if commands.remote.service is not None:
            commands.remote.service.setServiceParent(self.service)
        ClientService(client).setServiceParent(self.service)

    # -- requests ---------------------------------------------------------------

    async def _version(self) -> str:
        if not self.version:
            answer = await self._send("GET", "/openapi/v3", None)
            if answer.status != 200 or answer.document is None:
                raise Unavailable(f"slurmrestd at {self._client.where} gave no OpenAPI "
                                  f"document (HTTP {answer.status}) "
                                  f"{answers.error_text(answer.document) or answer.text}")
            self.version = choose(answer.document)
            self._known.forget()  # it may be another slurmrestd, even another cluster
            self._without_states = False
            _log.info("slurmrestd at {base} speaks OpenAPI {version}", base=self._client.where,
                      version=self.version)
        return self.version

    async def _send(self, method: str, path: str, user: str | None,
                    body: dict[str, Any] | None = None, listing: bool = False) -> Answer:
        """One request as ``user`` (None: the service account); a refused token is
        ``Unavailable`` saying so (its cached copy is dropped: the next is new). The
        slurmrestd of 25.05 and 26.05 passes slurmctld's refusal on (HTTP 511, 1007)."""
        name = user or self._service_user
        token = await self._tokens.token(name)
        try:
            answer = await self._client.request(method, path, name, token, body, listing)
        except Unavailable:
            if not self._pinned:
                self.version = ""  # detected again once it answers
            raise
        if answer.status in (401, 403) \
                or answers.AUTHENTICATION in answers.error_numbers(answer.document):
            self._tokens.forget(name)
            raise Unavailable(
                f"slurmrestd refused the {self._tokens.name} token of {name} (HTTP "
                f"{answer.status}: {answers.error_text(answer.document) or answer.text}): "
                "check that slurm.conf has AuthAltTypes=auth/jwt and, for minted tokens, "
                "that DSSR_SLURM_JWT_KEY_FILE is the cluster's jwt key")
        return answer

    async def _slurm(self, method: str, what: str, user: str | None = None,
                     body: dict[str, Any] | None = None, listing: bool = False) -> Answer:
        """``method`` on ``/slurm/<version>/<what>``; an answer that is not JSON (no
        such version, a proxy's error page) is ``Unavailable``."""
        version = await self._version()
        answer = await self._send(method, f"/slurm/{version}/{what}", user, body, listing)
        if answer.document is None:
            raise Unavailable(f"slurmrestd answered {method} {what} with HTTP "
                              f"{answer.status}, not JSON: {answer.text}")
        return answer

    def _down(self, answer: Answer, what: str, user: str | None = None) -> Unavailable:
        reason = answers.error_text(answer.document) or "no reason given"
        numbered = bool(answers.error_numbers(answer.document) - {-1})
        if not numbered and typed(self.version):
            # A refused token has its number (1007) since 25.05: here, most likely the
            # controller (jobs/state says only "Unable to query job states").
            reason += " (Slurm gave no error number: is slurmctld down?)"
        elif not numbered:
            # v0.0.38 says the same of a controller that is down and of a token slurmctld
            # refused (expired, signed with another key, another user's).
            reason += (f" (Slurm gave no error number: slurmctld is down, or it refused the "
                       f"{self._tokens.name} token of {user or self._service_user})")
        return Unavailable(f"slurmrestd could not {what} (HTTP {answer.status}): {reason}")

    def _read(self, read: Callable[..., T], *args: Any) -> T:
        try:
            return read(*args)
        except AnswerError as error:
            raise Unavailable(f"slurmrestd's answer not understood: {error}") from None

    # -- ISlurm -----------------------------------------------------------------

    async def submit(self, job: BatchJob, user: str | None = None,
                     setup: Setup | None = None) -> str:
        """The setup (a submit claim, ``dssr.jobfiles.CLAIM_SUBMIT``) runs as ``user`` over
        the remote around a command printing a mark of this submit and the user's home:
        a job id instead means the name is already submitted. Then the POST, and the job
        id written into the claim (or the claim dropped if the POST failed)."""
        mark = f"{PENDING}{secrets.token_hex(8)}:"
        argv = ["sh", "-c", MARK_HOME, "sh", mark]
        prepared = await self._commands.run(with_setup(setup, argv) if setup else argv,
                                            user=user)
        said = prepared.stdout.decode("utf-8", "replace").strip()
        if prepared.status == SETUP_BUSY or (prepared.ok and said.startswith(PENDING)
                                             and not said.startswith(mark)):
            raise Unavailable("submit: another submit of this job name is in progress; "
                              "try again")
        if prepared.ok and said.isdigit():
            return said  # claimed before: that job it is
        home = said.removeprefix(mark)
        if not prepared.ok or not said.startswith(mark) or not home.startswith("/"):
            raise Unavailable(f"preparing the job's directory failed: "
                              f"{first_line(prepared.stderr) or 'no home directory'}")
        claim = setup.args[1] if setup else None
        try:
            jobid = await self._post(job, user, home)
        except Exception:
            if claim:
                await self._commands.run(["rm", "-f", "--", claim], user=user)
            raise
        if claim:
            await self._commands.run(["sh", "-c", RECORD, "sh", claim, jobid], user=user)
        return jobid

    async def _post(self, job: BatchJob, user: str | None, home: str) -> str:
        version = await self._version()
        body = job_body(job, version, home)
        answer = await self._slurm("POST", "job/submit", user, body)
        jobid = answers.submitted(answer.document)
        if jobid is None:
            reason = answers.error_text(answer.document) or f"HTTP {answer.status}"
            if answer.status >= 500 and not answers.error_numbers(answer.document) - {-1}:
                raise self._down(answer, "submit the job")
            raise Refused(f"slurmrestd refused the job: {reason}")
        return jobid

    async def queue(self) -> list[QueueJob]:
        """Every job's state, then the jobs that changed one by one, or every job
        (``KnownJobs`` decides); where slurmrestd has no ``jobs/state``, every job."""
        now = self._clock.seconds()
        states = await self._states()
        if states is None:
            return self._read(answers.queue, await self._listing(), now)
        wanted = self._known.to_show(states, now)
        if wanted is None:
            listed = self._read(answers.jarvice_jobs, await self._listing())
            self._known.listed(states, listed, now)
        else:
            try:
                shown = await gatherResults([self._showing.run(self._show_job, key)
                                             for key in wanted], consumeErrors=True)
            except FirstError as error:
                error.subFailure.raiseException()
            for key, job in zip(wanted, shown, strict=True):
                self._known.shown(key, job)
        return self._read(answers.queue, {"jobs": self._known.jobs(states)}, now)

    async def _states(self) -> dict[str, list[str]] | None:
        """``GET .../jobs/state`` (None where slurmrestd has none: v0.0.38, or a
        release before 24.05, which answers 404)."""
        version = await self._version()
        if not typed(version) or self._without_states:
            return None
        answer = await self._send("GET", f"/slurm/{version}/jobs/state", None)
        if answer.status == 404:
            _log.info("slurmrestd {version} has no jobs/state: each queue snapshot lists "
                      "every job", version=version)
            self._without_states = True
            return None
        if answer.status != 200 or answer.document is None or answers.errors(answer.document):
            raise self._down(answer, "list the job states")
        return self._read(answers.states, answer.document)

    async def _listing(self) -> dict[str, Any]:
        """``GET .../jobs``: the Jarvice jobs, read off the reactor when it is large."""
        answer = await self._slurm("GET", "jobs", listing=True)
        if answer.status != 200 or answers.errors(answer.document):
            raise self._down(answer, "list the jobs")
        self.listings += 1
        return answer.document or {}

    def _show_job(self, key: str) -> Deferred[dict[str, Any] | None]:
        return Deferred.fromCoroutine(self._shown(key))

    async def _shown(self, key: str) -> dict[str, Any] | None:
        """The Jarvice job ``GET .../job/{key}`` shows; None for any other, or none."""
        answer = await self._slurm("GET", f"job/{_jobid(key)}")
        self.shown += 1
        if answers.error_numbers(answer.document) & {INVALID_JOB_ID, ACCESS_DENIED}:
            return None
        if answer.status != 200 or answers.errors(answer.document):
            raise self._down(answer, f"show job {key}")
        jobs = self._read(answers.jarvice_jobs, answer.document)
        return next((job for job in jobs if str(job.get("job_id")) == key), None)

    async def job(self, jobid: str, user: str | None = None) -> QueueJob | None:
        answer = await self._slurm("GET", f"job/{_jobid(jobid)}", user)
        if INVALID_JOB_ID in answers.error_numbers(answer.document):
            return None
        if answer.status != 200:
            raise self._down(answer, f"show job {jobid}", user)
        jobs = self._read(answers.queue, answer.document, self._clock.seconds())
        return next((job for job in jobs if job.jobid == jobid), None)

    async def cancel(self, jobid: str, user: str | None = None) -> None:
        """Where the answer cannot say the cancel was refused (v0.0.40/41 of Slurm 25.05),
        the job itself, read as ``user``, must show it cancelled (or gone)."""
        answer = await self._slurm(
            "DELETE", f"job/{_jobid(jobid)}?signal={CANCEL_SIGNAL}", user)
        self._refused(answer, f"cancelling job {jobid}", {ALREADY_DONE})
        if not typed(self.version) or not answers.refusal_unsaid(answer.document):
            return
        shown = await self._slurm("GET", f"job/{jobid}", user)
        jobs = (shown.document or {}).get("jobs") or []
        if shown.status == 200 and jobs and self._read(answers.live, jobs[0]):
            raise Refused(f"slurmrestd {self.version} did not cancel job {jobid} (it says "
                          f"nothing of a refusal: the job is still "
                          f"{self._read(answers.state, jobs[0].get('job_state'))})")

    async def release(self, jobid: str, user: str | None = None) -> None:
        answer = await self._slurm("POST", f"job/{_jobid(jobid)}", user, {"hold": False})
        if INVALID_JOB_ID in answers.error_numbers(answer.document):
            raise Refused(f"job {jobid} left the queue", unknown_job=True)
        self._refused(answer, f"releasing job {jobid}")

    def _refused(self, answer: Answer, what: str,
                 fine: frozenset[int] | set[int] = frozenset()) -> None:
        """Raise ``Refused`` (Slurm said no) or ``Unavailable`` for a failed answer."""
        numbers = answers.error_numbers(answer.document) - set(fine)
        if answer.status == 200 and not numbers:
            return
        if numbers & {ACCESS_DENIED, NOT_THE_OWNER, INVALID_JOB_ID}:
            raise Refused(f"slurmrestd refused {what}: {answers.error_text(answer.document)}",
                          unknown_job=INVALID_JOB_ID in numbers)
        if answer.status == 200:
            return
        raise self._down(answer, what)

    async def show(self, jobid: str) -> str:
        answer = await self._slurm("GET", f"job/{_jobid(jobid)}")
        jobs = (answer.document or {}).get("jobs") or []
        if jobs and isinstance(jobs[0], dict):
            return answers.describe(jobs[0])
        return answers.error_text(answer.document) or f"no job {jobid}"

    async def accounting(self, jobid: str, user: str | None = None) -> AccountingRecord | None:
        if not self._accounting.on():
            return None
        version = await self._version()
        answer = await self._send("GET", f"/slurmdb/{version}/job/{_jobid(jobid)}", user)
        if answer.status == 404 and not answers.errors(answer.document):
            _log.info("slurmrestd serves no /slurmdb (no openapi/dbv plugin or no slurmdbd): "
                      "using end records (asking again in {minutes:g} minutes)",
                      minutes=ACCOUNTING_RECHECK / 60)
            self._accounting.off()
            return None
        if answers.error_numbers(answer.document) == {answers.NOTHING_FOUND}:
            return None  # no record (yet): the end record decides
        if answer.status != 200 or answer.document is None or answers.errors(answer.document):
            _log.warn("slurmrestd accounting for job {jobid} failed (HTTP {status}): {error}; "
                      "its end record decides how it ended", jobid=jobid,
                      status=answer.status,
                      error=answers.error_text(answer.document) or answer.text)
            return None
        try:
            return answers.accounted(answer.document)
        except AnswerError as error:
            _log.warn("{error}; job {jobid}'s end record decides how it ended",
                      error=error, jobid=jobid)
            return None

    async def ping(self) -> None:
        answer = await self._slurm("GET", "ping")
        if answer.status != 200 or not answers.pinged(answer.document):
            raise self._down(answer, "reach a Slurm controller")

    def unready(self) -> str | None:
        return self._commands.unready() or (
            f"slurmrestd at {self._client.where}: {self._client.last_failure}"
            if self._client.last_failure else None)

    def metrics(self) -> Iterator[Sample]:
        yield from self._commands.remote.metrics()
        yield from self._client.metrics()
        yield Sample("dssr_slurmrestd_listings", "counter",
                     "Full job listings asked of slurmrestd", self.listings)
        yield Sample("dssr_slurmrestd_jobs_shown", "counter",
                     "Jobs asked of slurmrestd one by one, for a queue snapshot", self.shown)
