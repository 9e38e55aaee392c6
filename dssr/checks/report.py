"""How one check ended, and how that reads on a terminal: pure functions of text."""

from dataclasses import dataclass
from enum import Enum, auto


class Status(Enum):
    PASS = auto()
    FAIL = auto()
    SKIP = auto()


@dataclass(frozen=True)
class Outcome:
    """A check's verdict: ``detail`` says what was found (or what is wrong), ``fixes`` how to
    put it right. Neither may ever hold a secret."""

    status: Status
    detail: str
    fixes: tuple[str, ...] = ()


def passed(detail: str) -> Outcome:
    return Outcome(Status.PASS, detail)


def failed(detail: str, *fixes: str) -> Outcome:
    return Outcome(Status.FAIL, detail, fixes)


def skipped(detail: str) -> Outcome:
    return Outcome(Status.SKIP, detail)


UNICODE = {Status.PASS: "✓", Status.FAIL: "✗", Status.SKIP: "-"}
ASCII = {Status.PASS: "OK", Status.FAIL: "FAIL", Status.SKIP: "SKIP"}


def marks_for(encoding: str | None) -> dict[Status, str]:
    """✓/✗ where ``encoding`` can write them (None: a text buffer, anything goes), else ASCII."""
    try:
        "".join(UNICODE.values()).encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return UNICODE


def format_outcome(name: str, outcome: Outcome, marks: dict[Status, str]) -> list[str]:
    """``✓ name: detail``, or ``✗ name: what is wrong`` and one indented ``fix:`` line each."""
    lines = [f"{marks[outcome.status]} {name}: {outcome.detail}"]
    lines += [f"  fix: {fix}" for fix in outcome.fixes]
    return lines


def summary(outcomes: list[Outcome]) -> str:
    """The last line: how many checks passed, failed and were skipped."""
    counts = {status: sum(o.status is status for o in outcomes) for status in Status}
    if counts[Status.FAIL]:
        text = f"{counts[Status.FAIL]} of {len(outcomes)} checks failed"
    else:
        text = f"all {counts[Status.PASS]} checks passed"
    if counts[Status.SKIP]:
        text += f", {counts[Status.SKIP]} skipped"
    return text
