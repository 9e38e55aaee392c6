"""What slurmrestd answers, read into DSSR's Slurm values; pure functions per version.

v0.0.38 gives numbers as plain integers, a job's state as one string (``squeue``'s
long name, flags such as COMPLETING included) and its exit code as a raw wait status
(256 is exit 1). v0.0.40 on give ``{number, set, infinite}`` objects, states as lists
(a base state and flags) and exit codes as ``{status, return_code, signal}``. Slurm
25.05 and 26.05 (whatever the version) answer a ``DELETE .../job/{id}`` 200 with each
job's refusal in ``status``, not in ``errors`` (in v0.0.40 and v0.0.41 they drop it:
only the job's state then tells); v0.0.42 on ping with
``responding`` (v0.0.45 has no ``pinged`` any more). A document these functions cannot
read raises ``AnswerError``: a wrong reading of the queue would make upstream take live
jobs for ended.
"""

import json
from typing import Any

from dssr.slurm.interfaces import JOB_PREFIX, AccountingRecord, QueueJob
from dssr.slurm.parse import SlurmOutputError, expand_hostlist
from dssr.slurm.rest.shrink import shrink
from dssr.slurm.states import long_name

# Job state flags squeue shows instead of the base state, in squeue's order.
STATE_FLAGS = ("COMPLETING", "STAGE_OUT", "CONFIGURING", "RESIZING", "REQUEUED",
               "REQUEUE_FED", "REQUEUE_HOLD", "SPECIAL_EXIT", "STOPPED", "REVOKED",
               "RESV_DEL_HOLD", "SIGNALING")
# Slurm error numbers DSSR tells apart (slurm_errno.h).
AUTHENTICATION = 1007  # slurmctld refused the token (25.05 and 26.05 say so; 22.05: -1)
ACCESS_DENIED = 2002
NOT_THE_OWNER = 2010  # ESLURM_USER_ID_MISSING: an update (release) of another's job
INVALID_JOB_ID = 2017
ALREADY_DONE = 2021
NOTHING_FOUND = 9003  # slurmdbd has no record of the job


class AnswerError(SlurmOutputError):
    """slurmrestd answered something these functions do not understand."""


def errors(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``errors`` objects of an answer (empty when it has none)."""
    found = (document or {}).get("errors") or []
    return [error for error in found if isinstance(error, dict)]


def _refusals(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A kill answer's per-job refusals (``status[].error`` with a non-zero ``code``)."""
    found = (document or {}).get("status")
    found = found if isinstance(found, list) else []
    return [item["error"] for item in found if isinstance(item, dict)
            and isinstance(item.get("error"), dict) and item["error"].get("code")]


def error_numbers(document: dict[str, Any] | None) -> set[int]:
    """The Slurm error numbers in an answer (``error_number``; v0.0.38 also ``error_code``;
    a kill answer's per-job ``code``)."""
    numbers = set()
    for error in errors(document):
        for key in ("error_number", "error_code"):
            if isinstance(error.get(key), int):
                numbers.add(error[key])
    numbers.update(error["code"] for error in _refusals(document)
                   if isinstance(error["code"], int))
    return numbers


def error_text(document: dict[str, Any] | None) -> str:
    """The answer's error messages in one line (empty when it has none)."""
    texts: list[str] = []
    found: list[tuple[dict[str, Any], tuple[str, ...]]]
    found = [(error, ("error", "description")) for error in errors(document)]
    found += [(error, ("message",)) for error in _refusals(document)]
    for error, keys in found:
        text = "; ".join(str(error[key]) for key in keys
                         if error.get(key) and error[key] != "Unspecified error")
        if text and text not in texts:
            texts.append(text)
    return "; ".join(texts)


def number(value: object) -> int | None:
    """An integer field: a plain int (v0.0.38), or a v0.0.40+ ``{number, set, infinite}``
    (None when unset or infinite)."""
    if isinstance(value, bool):
        raise AnswerError(f"not a number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        if value.get("infinite") or not value.get("set", True):
            return None
        found = value.get("number")
        return found if isinstance(found, int) and not isinstance(found, bool) else None
    if value is None:
        return None
    raise AnswerError(f"not a number: {value!r}")


def state(value: object) -> str:
    """A job state as ``squeue`` prints it: v0.0.38's string, or from v0.0.40's list the
    flag squeue would show (e.g. COMPLETING), else the base state."""
    if isinstance(value, str) and value:
        return long_name(value)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        names: list[str] = [item.upper() for item in value]
        for flag in STATE_FLAGS:
            if flag in names:
                return flag
        return names[0]
    raise AnswerError(f"not a job state: {value!r}")


def _hms(seconds: int) -> str:
    seconds = max(0, seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def elapsed(job: dict[str, Any], job_state: str, now: float) -> str:
    """The time a job has run, as ``squeue %M`` counts it (suspended time left out; none
    while pending, whatever start the backfill scheduler expects for it)."""
    value = job.get("job_state")
    base = value[0] if isinstance(value, list) and value else value
    if base == "PENDING" or not number(job.get("start_time")):
        return "00:00:00"
    pre_suspend = number(job.get("pre_sus_time")) or 0
    if job_state == "SUSPENDED":
        return _hms(pre_suspend)
    end = number(job.get("end_time")) or 0
    if job_state in ("RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "CONFIGURING") \
            or not end:
        end = int(now)
    suspended = number(job.get("suspend_time")) or 0
    if suspended:
        return _hms(pre_suspend + end - suspended)
    return _hms(end - (number(job.get("start_time")) or end))


def queue_job(job: dict[str, Any], now: float) -> QueueJob | None:
    """One job of ``GET .../jobs`` as a ``QueueJob``; None unless it is a Jarvice job."""
    if not isinstance(job, dict):
        raise AnswerError(f"not a job: {job!r}")
    name = job.get("name")
    if not isinstance(name, str) or not name.startswith(JOB_PREFIX):
        return None
    jobid = job.get("job_id")
    if not isinstance(jobid, int) or isinstance(jobid, bool):
        raise AnswerError(f"job {name!r} has no job_id")
    job_state = state(job.get("job_state"))
    return QueueJob(
        jobid=str(jobid),
        state=job_state,
        elapsed=elapsed(job, job_state, now),
        nodes=tuple(expand_hostlist(job.get("nodes") or "")),
        owner=str(job.get("user_name") or ""),
        reason=str(job.get("state_reason") or "None"),
        name=name.removeprefix(JOB_PREFIX),
    )


def queue(document: dict[str, Any] | None, now: float) -> list[QueueJob]:
    """The Jarvice jobs in an answer to ``GET .../jobs`` (or ``.../job/{id}``)."""
    jobs = (document or {}).get("jobs")
    if not isinstance(jobs, list):
        raise AnswerError("the answer holds no list of jobs")
    return [found for job in jobs if (found := queue_job(job, now)) is not None]


def jarvice_jobs(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The Jarvice jobs of an answer to ``GET .../jobs`` or ``.../job/{id}``, each cut to
    the fields ``queue_job`` reads."""
    jobs = (document or {}).get("jobs")
    if not isinstance(jobs, list):
        raise AnswerError("the answer holds no list of jobs")
    for job in jobs:
        if not isinstance(job, dict):
            raise AnswerError(f"not a job: {job!r}")
    found: list[dict[str, Any]] = shrink({"jobs": jobs}, JOB_PREFIX)["jobs"]
    return found


def states(document: dict[str, Any] | None) -> dict[str, list[str]]:
    """Every job's state by its id (``123``; ``123_4`` for an array task, ``123+1`` for
    a heterogeneous job's part) in an answer to ``GET .../jobs/state`` (v0.0.40 on)."""
    jobs = (document or {}).get("jobs")
    if not isinstance(jobs, list):
        raise AnswerError("the answer holds no list of job states")
    found = {}
    for job in jobs:
        jobid = job.get("job_id") if isinstance(job, dict) else None
        value = job.get("state") if isinstance(job, dict) else None
        if not isinstance(jobid, str) or not jobid or not isinstance(value, list) \
                or not all(isinstance(item, str) for item in value):
            raise AnswerError(f"not a job state: {job!r}")
        found[jobid] = value
    return found


def submitted(document: dict[str, Any] | None) -> str | None:
    """The job id a submit answer gives (v0.0.38 ``job_id``, later also ``result``)."""
    document = document or {}
    for holder in (document, document.get("result") or {}):
        jobid = holder.get("job_id") if isinstance(holder, dict) else None
        if isinstance(jobid, int) and not isinstance(jobid, bool) and jobid > 0:
            return str(jobid)
    return None


def refusal_unsaid(document: dict[str, Any] | None) -> bool:
    """Whether a typed answer to ``DELETE .../job/{id}`` cannot say the job was refused:
    it has no ``status`` (v0.0.40/41 served by Slurm 25.05 answer 200 and nothing else,
    whether the signal was sent or refused)."""
    return not errors(document) and "status" not in (document or {})


# Base states of a job Slurm has not ended (a cancelled one is CANCELLED at once).
_LIVE = ("PENDING", "RUNNING", "SUSPENDED")


def live(job: dict[str, Any]) -> bool:
    """Whether a job of ``GET .../job/{id}`` is still pending, running or suspended: its
    base state (v0.0.38's string, the first of a later list) is not an end."""
    value = job.get("job_state") if isinstance(job, dict) else None
    base = value[0] if isinstance(value, list) and value else value
    if not isinstance(base, str) or not base:
        raise AnswerError(f"not a job state: {value!r}")
    return long_name(base) in _LIVE


def exit_status(value: object) -> tuple[int, int]:
    """``(exit code, signal)`` of an exit code field: v0.0.38's raw wait status (256 is
    exit 1, 9 is SIGKILL), or v0.0.40's ``{status, return_code, signal}``; also
    v0.0.38's accounting form ``{status, return_code, signal: {signal_id}}``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value >> 8) & 0xFF, value & 0x7F
    if isinstance(value, dict):
        signal = value.get("signal") or {}
        signal_id = signal.get("id", signal.get("signal_id")) if isinstance(signal, dict) \
            else None
        return number(value.get("return_code")) or 0, number(signal_id) or 0
    if value is None:
        return 0, 0
    raise AnswerError(f"not an exit code: {value!r}")


def pinged(document: dict[str, Any] | None) -> bool:
    """Whether a ``GET .../ping`` answer reports a controller up: v0.0.42 on say whether it
    is ``responding`` (v0.0.45 only that); v0.0.38 says ``ping`` UP, v0.0.40/41 ``pinged``."""
    pings = (document or {}).get("pings") or []
    return any(ping["responding"] is True if "responding" in ping
               else str(ping.get("pinged", ping.get("ping", ""))).upper() == "UP"
               for ping in pings if isinstance(ping, dict))


def _step_state(step: dict[str, Any]) -> str:
    """A step's state in accounting: a string (v0.0.38), a list, or ``{current}``."""
    value = step.get("state")
    if isinstance(value, dict):
        value = value.get("current")
    return state(value) if value else ""


def accounted(document: dict[str, Any] | None) -> AccountingRecord | None:
    """The job in an answer to ``GET /slurmdb/.../job/{id}``, or None if it has none.

    A job whose batch script failed after one of its steps ran out of memory ended
    OUT_OF_MEMORY (as ``dssr.slurm.parse.parse_sacct`` reads sacct).
    """
    jobs = (document or {}).get("jobs") or []
    if not jobs:
        return None
    job = jobs[0]
    if not isinstance(job, dict):
        raise AnswerError(f"not a job: {job!r}")
    current = (job.get("state") or {}).get("current")
    job_state = state(current)
    code, signal = exit_status(job.get("exit_code"))
    steps = {_step_state(step) for step in job.get("steps") or [] if isinstance(step, dict)}
    if job_state == "FAILED" and "OUT_OF_MEMORY" in steps:
        job_state = "OUT_OF_MEMORY"
    return AccountingRecord(state=job_state, exit_code=code, signal=signal,
                            elapsed=_hms(number((job.get("time") or {}).get("elapsed")) or 0),
                            name=str(job.get("name") or ""))


def describe(job: dict[str, Any]) -> str:
    """One job as ``scontrol show job`` lays it out: ``Key=Value`` words, sorted, for
    ``/events`` (nested values as compact JSON)."""
    words = []
    for key in sorted(job):
        value = job[key]
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        words.append(f"{key}={text}")
    return "\n".join(words) + "\n"
