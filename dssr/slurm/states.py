"""Slurm job states: which upstream list a job belongs to, and the rc it ended with.

squeue prints long names (``%T``) or codes (``%t``); sacct prints long names, sometimes
with a suffix (``CANCELLED by 1001``). Every function here takes any of these forms.

DSSR: the reference downstream lists only CF, PD, RD, RF as queued; DSSR also
counts RQ (REQUEUED: a completing job going back to pending) and SE (SPECIAL_EXIT:
requeued and held) as queued, because a job in neither list is declared ended by
upstream, which would collect the output of a job Slurm is about to run again.
"""

from enum import Enum


class Category(Enum):
    """Where a job in a given state belongs, as upstream sees it."""

    QUEUED = "queued"
    RUNNING = "running"
    ENDED = "ended"
    # A state this table does not know (a newer Slurm); callers should treat the job
    # as still alive rather than ended, so its output is not collected too early.
    UNKNOWN = "unknown"


# Codes and long names from the JOB STATE CODES of squeue(1) and sacct(1), Slurm 22.05.
LONG_NAMES: dict[str, str] = {
    "BF": "BOOT_FAIL",
    "CA": "CANCELLED",
    "CD": "COMPLETED",
    "CF": "CONFIGURING",
    "CG": "COMPLETING",
    "DL": "DEADLINE",
    "F": "FAILED",
    "NF": "NODE_FAIL",
    "OOM": "OUT_OF_MEMORY",
    "PD": "PENDING",
    "PR": "PREEMPTED",
    "R": "RUNNING",
    "RD": "RESV_DEL_HOLD",
    "RF": "REQUEUE_FED",
    "RH": "REQUEUE_HOLD",
    "RQ": "REQUEUED",
    "RS": "RESIZING",
    "RV": "REVOKED",
    "SI": "SIGNALING",
    "SE": "SPECIAL_EXIT",
    "SO": "STAGE_OUT",
    "ST": "STOPPED",
    "S": "SUSPENDED",
    "TO": "TIMEOUT",
}

_CATEGORIES: dict[str, Category] = {
    **dict.fromkeys(
        ["CONFIGURING", "PENDING", "RESV_DEL_HOLD", "REQUEUE_FED", "REQUEUED", "SPECIAL_EXIT"],
        Category.QUEUED,
    ),
    **dict.fromkeys(
        ["RUNNING", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STOPPED", "SUSPENDED",
         "COMPLETING", "STAGE_OUT"],
        Category.RUNNING,
    ),
    **dict.fromkeys(
        ["BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
         "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "TIMEOUT"],
        Category.ENDED,
    ),
}

# The rc upstream gets in /exitstatus (docs/protocol.rst); any state not listed gives -9.
_EXIT_CODES: dict[str, int] = {
    "COMPLETED": 0,
    "FAILED": 1,
    "NODE_FAIL": 1,
    "OUT_OF_MEMORY": 1,
    "CANCELLED": -15,
    "DEADLINE": -15,
    "PREEMPTED": -15,
}


def long_name(state: str) -> str:
    """The long name of a state: ``CD`` -> ``COMPLETED``, ``CANCELLED by 1001`` -> ``CANCELLED``.

    Unknown states come back upper-cased and otherwise unchanged.
    """
    words = state.split()
    word = words[0].upper() if words else ""
    return LONG_NAMES.get(word, word)


def category(state: str) -> Category:
    """Which upstream list (queued, running) a job in ``state`` belongs to, or ended."""
    return _CATEGORIES.get(long_name(state), Category.UNKNOWN)


def exit_code(state: str) -> int:
    """The ``/exitstatus`` rc for a job that ended in ``state``: 0, 1, -15, else -9."""
    return _EXIT_CODES.get(long_name(state), -9)
