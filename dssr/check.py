"""``dssr check``: is this DSSR set up right? One ✓/✗ line per check, and on ✗ the fix.

It reads the settings the service would (environment, ``--config``, options) and
walks the way a job takes: settings, private key, TCP to the login node, its host
key, the login, the Slurm commands, the controller, the scratch directory, each
mapped user's login, and with ``--submit-test`` a tiny job. A check whose
prerequisite failed is shown as skipped. Exit status 0 only when every check passed.
Secrets are never printed.
"""

import argparse
import os
import sys
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from dssr.checks.cluster import STEPS, Cluster
from dssr.checks.config import check_environment, check_settings, slurm_named
from dssr.checks.report import Outcome, Status, format_outcome, marks_for, summary
from dssr.checks.runner import Check, Runner

if TYPE_CHECKING:
    from dssr.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    """The options: the service's own (they feed the same settings) and the check's."""
    parser.add_argument("--config", metavar="FILE",
                        help="YAML file of settings (as for twistd dssr)")
    parser.add_argument("--connector", help="dummy, slurm, or a dotted path (as for twistd dssr)")
    parser.add_argument("--listen", help="endpoint string (only checked for its form)")
    parser.add_argument("--state-dir", help="directory for local state (as for twistd dssr)")
    parser.add_argument("--submit-test", action="store_true",
                        help="also run a tiny job through sbatch and read its output back")
    parser.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                        help="limit for each connection and command (default 20)")
    parser.add_argument("--submit-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="how long the test job may take, queue time included "
                             "(default 120)")


def parse(argv: list[str]) -> argparse.Namespace:
    """``dssr check``'s arguments from ``argv`` (for calling ``check`` in-process)."""
    parser = argparse.ArgumentParser(prog="dssr check")
    configure(parser)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Run the checks on the reactor; the exit status."""
    async def main(reactor: Any) -> None:
        code = await check(reactor, args, os.environ, sys.stdout)
        if code:
            raise SystemExit(code)

    try:
        react(lambda reactor: ensureDeferred(main(reactor)))
    except SystemExit as done:
        return cast(int, done.code)  # main's code: react exits with it
    return 0


async def not_run() -> Outcome:
    """The run of a check that is only ever listed as skipped."""
    raise AssertionError("a check listed as skipped was run")


async def check(reactor: Any, args: argparse.Namespace, environ: Mapping[str, str],
                out: IO[str]) -> int:
    """Run every check that applies, printing each line to ``out`` as it is known.

    0 when all passed, else 1.
    """
    marks = marks_for(getattr(out, "encoding", None))

    def report(name: str, outcome: Outcome) -> None:
        for line in format_outcome(name, outcome, marks):
            print(line, file=out, flush=True)

    runner = Runner(report)
    cli = {"connector": args.connector, "listen": args.listen, "state_dir": args.state_dir}
    loaded: dict[str, Settings | None] = {}

    async def settings() -> Outcome:
        outcome, loaded["settings"] = check_settings(cli, args.config, environ, reactor)
        return outcome

    async def environment() -> Outcome:
        return check_environment(environ)

    await runner.run([Check("environment", environment), Check("settings", settings)])
    if loaded["settings"] is not None:
        cluster = Cluster(reactor, loaded["settings"], args.timeout, args.submit_timeout)
        try:
            await runner.run(cluster.checks(args.submit_test))
        finally:
            await cluster.close()
    elif slurm_named(cli, args.config, environ):
        # Shown, not run: each needs settings that did not pass.
        names = STEPS + (("submit test",) if args.submit_test else ())
        await runner.run([Check(name, not_run, ("settings",)) for name in names])
    print(summary(runner.outcomes), file=out, flush=True)
    return 1 if any(o.status is Status.FAIL for o in runner.outcomes) else 0
