"""What the simulator prints: pure formatting functions, and a ``Display`` that writes.

Every event is a plain line, so a log or a pipe gets the whole story. On a terminal a
live progress line (rewritten in place with ``\\r``) sits below them, showing how
long each job has waited or run; it is cleared before each plain line and redrawn after.
"""

from collections import Counter
from typing import IO

from dssr.simulator.job import SimJob, exit_code

CLEAR = "\r\x1b[K"


def waited(seconds: float) -> str:
    """``seconds`` as ``H:MM:SS`` (or ``M:SS`` under an hour)."""
    minutes, second = divmod(int(seconds), 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour}:{minute:02d}:{second:02d}" if hour else f"{minute}:{second:02d}"


def nodes_text(nodes: tuple[str, ...]) -> str:
    return " ".join(nodes) if nodes else "(no nodes yet)"


def submitted_line(job: SimJob, nodes: int, cores: int, command: str) -> str:
    held = ", held" if job.held else ""
    return (f"{job.ref.name}: submitted as job {job.ref.jobid} ({nodes} node(s) x "
            f"{cores} core(s){held}): {command}")


def queued_line(job: SimJob) -> str:
    return f"{job.ref.name}: queued" + (" (held)" if job.held and not job.released else "")


def released_line(job: SimJob) -> str:
    return f"{job.ref.name}: released"


def running_line(job: SimJob) -> str:
    return f"{job.ref.name}: running on {nodes_text(job.nodes)} (elapsed {job.elapsed})"


def terminating_line(job: SimJob, timeout: float) -> str:
    return f"{job.ref.name}: still not ended after --timeout {timeout:g} s; terminating it"


def ended_line(job: SimJob) -> str:
    """The job's verdict, e.g. ``x: ended, rc 0 (exit 0) after 00:00:10: << ... >>``."""
    result = job.result
    if result is None:
        return f"{job.ref.name}: gave up; it is still listed after /terminate"
    text = (f"{job.ref.name}: ended, rc {result.rc} (exit {exit_code(result.rc)}) "
            f"after {result.totaltime}")
    return text + (f": {result.termination}" if result.termination else "")


def output_lines(job: SimJob, lines: list[str], many: bool) -> list[str]:
    """The job's output lines as printed: prefixed with the job's name when there are many."""
    return [f"[{job.ref.name}] {line}" for line in lines] if many else lines


def status_text(job: SimJob, now: float) -> str:
    """One job's state for the progress line."""
    if job.state == "running":
        return f"running {job.elapsed} on {nodes_text(job.nodes)}"
    if job.state == "ended":
        return "ended" if job.result is None else f"ended, rc {job.result.rc}"
    state = "held" if job.held and not job.released else job.state
    return f"{state} {waited(now - job.submitted_at)}"


def progress_text(jobs: list[SimJob], now: float, started: float) -> str:
    """The live progress line: the one job's state, or counts for many."""
    if len(jobs) == 1:
        job = jobs[0]
        return f"{job.ref.name} (job {job.ref.jobid}): {status_text(job, now)}"
    states = Counter(job.state for job in jobs)
    failed = sum(1 for job in jobs if job.result is not None and job.result.rc != 0)
    return (f"{len(jobs)} jobs: {states['submitted'] + states['queued']} queued, "
            f"{states['running']} running, {states['ended']} ended ({failed} failed) "
            f"after {waited(now - started)}")


def summary_lines(jobs: list[SimJob]) -> list[str]:
    """The end-of-run summary of many jobs: one line per job, then the counts."""
    width = max(len(job.ref.name) for job in jobs)
    lines = ["summary:"]
    for job in jobs:
        if job.result is None:
            verdict = "no exit status (still listed after /terminate)"
        else:
            verdict = f"rc {job.result.rc:>3}  {job.result.totaltime}"
        timed_out = "  (terminated by --timeout)" if job.terminated else ""
        lines.append(f"  {job.ref.name:<{width}}  job {job.ref.jobid:>6}  {verdict}{timed_out}")
    rcs = Counter(job.result.rc for job in jobs if job.result is not None)
    ok = rcs.pop(0, 0)
    counts = ", ".join(f"{count} rc {rc}" for rc, count in sorted(rcs.items()))
    unknown = sum(1 for job in jobs if job.result is None)
    lines.append(f"{len(jobs)} jobs: {ok} succeeded"
                 + (f", {counts}" if counts else "")
                 + (f", {unknown} without exit status" if unknown else ""))
    return lines


class Display:
    """Writes plain lines to ``stream``; with ``tty``, also a live progress line."""

    def __init__(self, stream: IO[str], tty: bool, width: int = 80):
        self._stream = stream
        self._tty = tty
        self._width = max(width - 1, 20)
        self._progress = ""

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()

    def line(self, text: str) -> None:
        """Print ``text`` as a line of its own, keeping the progress line below it."""
        if self._progress:
            self._write(CLEAR + text + "\n" + self._progress)
        else:
            self._write(text + "\n")

    def lines(self, texts: list[str]) -> None:
        for text in texts:
            self.line(text)

    def progress(self, text: str) -> None:
        """Show ``text`` as the progress line (a terminal only), cut to the width."""
        if self._tty:
            self._progress = text[:self._width]
            self._write(CLEAR + self._progress)

    def close(self) -> None:
        """Remove the progress line."""
        if self._progress:
            self._write(CLEAR)
            self._progress = ""
