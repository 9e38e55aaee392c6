"""One followed job, and what the jobs' ends mean for the simulator's exit code.

Exit codes (documented in ``dssr sim --help`` too):

- one job: its ``rc`` as a shell would show a process's status — ``0`` → 0, ``1`` → 1,
  a negative ``rc`` (upstream's "killed by signal": ``-15`` cancelled, ``-9`` any other
  end or unknown) → 128 + the signal number, so ``-15`` → 143 and ``-9`` → 137;
- several jobs (``--jobs N``): 0 if every job's ``rc`` is 0, else 1;
- 3 when ``--timeout`` ran out (the jobs were terminated); 2 when DSSR could not be
  asked or refused a call; 4 when ``--url`` is not an http(s) URL (``dssr.sim``).
"""

from dataclasses import dataclass, field

from dssr.jobs import JobRef
from dssr.simulator.client import ExitStatus
from dssr.simulator.tail import OutputFollower

OUTPUT_WINDOW = 10000  # lines of output /exitstatus returns at most (docs/protocol.rst)
EXIT_DSSR_ERROR = 2
EXIT_TIMEOUT = 3
EXIT_BAD_URL = 4


@dataclass
class SimJob:
    """A submitted job and what the simulator has seen of it."""

    ref: JobRef
    submitted_at: float
    held: bool = False
    state: str = "submitted"  # then "queued", "running", "ended"
    nodes: tuple[str, ...] = ()
    elapsed: str = "00:00:00"
    released: bool = False
    terminated: bool = False  # by --timeout
    result: ExitStatus | None = None
    output: OutputFollower = field(default_factory=lambda: OutputFollower(OUTPUT_WINDOW))


def exit_code(rc: int) -> int:
    """The process exit code for a job's ``rc``: itself if 0..255, 128+signal if negative."""
    if rc < 0:
        return 128 + min(-rc, 127)
    return min(rc, 255)


def overall_exit(jobs: list[SimJob]) -> int:
    """The simulator's exit code once it stopped following ``jobs``."""
    if any(job.terminated for job in jobs):
        return EXIT_TIMEOUT
    if len(jobs) == 1 and jobs[0].result is not None:
        return exit_code(jobs[0].result.rc)
    return 0 if all(job.result is not None and job.result.rc == 0 for job in jobs) else 1
