"""Checks in order, each run only when the checks it needs have passed."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dssr.checks.report import Outcome, Status, skipped


@dataclass(frozen=True)
class Check:
    """One line of the report: ``run`` gives its outcome; ``needs`` names earlier checks
    without whose success it cannot tell anything (no login: no command can be tried)."""

    name: str
    run: Callable[[], Awaitable[Outcome]]
    needs: tuple[str, ...] = ()


class Runner:
    """Runs checks one after another and hands each outcome to ``report`` as it comes.

    A check whose prerequisite did not pass is shown as skipped, not as one more
    failure: the first ✗ is the one to fix.
    """

    def __init__(self, report: Callable[[str, Outcome], None]):
        self._report = report
        self._status: dict[str, Status] = {}
        self.outcomes: list[Outcome] = []

    def passed(self, name: str) -> bool:
        return self._status.get(name) is Status.PASS

    async def run(self, checks: list[Check]) -> None:
        for check in checks:
            missing = [name for name in check.needs if not self.passed(name)]
            if missing:
                outcome = skipped(f"skipped: needs {' and '.join(missing)}")
            else:
                outcome = await check.run()
            self._status[check.name] = outcome.status
            self.outcomes.append(outcome)
            self._report(check.name, outcome)
