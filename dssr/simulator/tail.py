"""Which lines of a job's output are new, given successive tails of it.

Upstream sees output only as "the last N lines" (``/request/.../tail``, and the tail
in ``/exitstatus``), so following a job means finding where each new tail picks up
from what was already printed. Pure functions and one small record, no I/O.
"""

from dataclasses import dataclass, field

SKIPPED = "[... output skipped: more lines than one tail holds were written between polls]"


def complete_lines(text: str, final: bool) -> list[str]:
    """The lines of ``text``; an unterminated last line only when ``final`` (the job ended)."""
    lines = text.split("\n")
    last = lines.pop()
    if final and last:
        lines.append(last)
    return lines


def unseen(current: list[str], printed: int, recent: list[str],
           window: int) -> tuple[list[str], bool]:
    """The lines of ``current`` not printed yet, and whether some before them were missed.

    ``current`` is a tail asked for ``window`` lines; ``printed`` is how many lines were
    printed so far and ``recent`` the last of them. A tail shorter than ``window`` is the
    whole output, so its new lines are simply those past ``printed``. A full one is
    matched against ``recent``: the latest place where the lines before it repeat the
    end of ``recent`` is where the new lines start.
    """
    if len(current) < window:
        return current[printed:], False
    if not recent:
        return current, False
    for start in range(len(current), 0, -1):
        overlap = min(start, len(recent))
        if current[start - overlap:start] == recent[len(recent) - overlap:]:
            return current[start:], False
    return current, True


@dataclass
class OutputFollower:
    """What has been printed of one job's output so far."""

    keep: int  # how many printed lines to remember: the largest tail that will be asked
    printed: int = 0
    recent: list[str] = field(default_factory=list)

    def new_lines(self, text: str, window: int, final: bool = False) -> list[str]:
        """The lines to print for the tail ``text`` (asked for ``window`` lines).

        Records them as printed; a gap is shown as a ``SKIPPED`` line.
        """
        lines, missed = unseen(complete_lines(text, final), self.printed, self.recent, window)
        self.printed += len(lines)
        self.recent = (self.recent + lines)[-self.keep:]
        return [SKIPPED, *lines] if missed else lines
