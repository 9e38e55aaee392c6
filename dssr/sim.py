"""``dssr sim``: act as Jarvice upstream against a running DSSR — submit, follow, collect.

It builds a correct singularity ``hpc_script`` around ``--command``, submits it to
``--url`` as upstream would, polls ``/running`` and ``/queued`` every ``--interval``
seconds, shows the job queued, then running (nodes and elapsed from ``/runstatus``)
with the new lines of its output, and finally its ``/exitstatus``. With ``--jobs N``
it does that for N jobs at once and ends with a summary. The exit code follows the
job (see ``dssr.simulator.job``).
"""

import argparse
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from typing import IO, Any, NoReturn, cast
from urllib.parse import urlsplit

from twisted.internet.task import react
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent

from dssr.simulator import display as show
from dssr.simulator.client import DSSRClient, DSSRError
from dssr.simulator.display import Display
from dssr.simulator.follow import Follower
from dssr.simulator.job import EXIT_BAD_URL, EXIT_DSSR_ERROR, overall_exit
from dssr.simulator.script import JobSpec, hpc_script, job_name

AUTH_ENV = "DSSR_SIM_AUTH"
DEFAULT_COMMAND = 'echo "hello from $(hostname)"; sleep 3; echo done'

EPILOG = """\
exit codes: one job: its rc as a shell shows a status (0 -> 0, 1 -> 1, -15 cancelled ->
143, -9 other end/unknown -> 137, any -N -> 128+N); --jobs N: 0 if all rc are 0, else 1;
2: DSSR could not be reached or refused a call; 3: --timeout ran out (jobs terminated);
4: --url is not an http:// or https:// URL (nothing was asked).

--direct (the default) makes a job body that runs the command on the node itself,
since test clusters have no singularity; --singularity makes one that runs it in the
--repo image with singularity, as a real upstream script does. Either way the body
prints JARVICE_CMD_SUCCESS when the command exits 0, which is what DSSR's verdict reads.

--held submits the jobs held and releases each the first time it is seen in /queued,
so the hold and /release path is exercised on the way."""


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def convert(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0: {text}")
        return value
    convert.__name__ = kind.__name__
    return convert


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``dssr sim``'s options to ``parser``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--url", default="http://127.0.0.1:5000",
                        help="the DSSR to drive (default: %(default)s)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", default=os.environ.get(AUTH_ENV),
                        help=f"DSSR's server key (default: ${AUTH_ENV}; none if unset)")
    parser.add_argument("--name", default="sim", metavar="PREFIX",
                        help="job name prefix: jobs are PREFIX-<UTC time>-<random>[-<i>]")
    parser.add_argument("--jobs", type=_positive(int), default=1, metavar="N",
                        help="launch and follow N jobs, then print a summary (default: 1)")
    parser.add_argument("--nodes", type=_positive(int), default=1, metavar="N",
                        help="nodes per job (default: 1)")
    parser.add_argument("--cores", type=_positive(int), default=1, metavar="N",
                        help="cores per node, JARVICE_CPU_CORES (default: 1)")
    # not "command": the dssr command keeps the subcommand's name in args.command
    parser.add_argument("--command", dest="job_command", default=DEFAULT_COMMAND,
                        metavar="TEXT",
                        help="the shell command the job runs (default: %(default)s)")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--direct", dest="direct", action="store_true", default=True,
                      help="the job body runs the command directly (default)")
    body.add_argument("--singularity", dest="direct", action="store_false",
                      help="the job body runs the command in --repo with singularity")
    parser.add_argument("--repo", default=JobSpec.repo,
                        help="JOBOBJ_REPO, the app image (default: %(default)s)")
    parser.add_argument("--arch", default=JobSpec.arch,
                        help="JOBOBJ_ARCH (default: %(default)s)")
    parser.add_argument("--exclusive", action="store_true",
                        help="ask for whole nodes (JOBOBJ_DEVICES exclusive=True)")
    parser.add_argument("--held", action="store_true",
                        help="submit held; release once seen in /queued")
    parser.add_argument("--interval", type=_positive(float), default=2.0, metavar="SECONDS",
                        help="seconds between polls (default: %(default)s)")
    parser.add_argument("--timeout", type=_positive(float), metavar="SECONDS",
                        help="after this long, terminate unfinished jobs and exit 3")


def url_problem(url: str) -> str:
    """Why ``url`` cannot name a DSSR (empty when it can)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as error:
        return f"not a URL ({error})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be http://HOST:PORT or https://HOST:PORT"
    return ""


async def simulate(reactor: Any, args: argparse.Namespace, out: IO[str], err: IO[str],
                   tty: bool, width: int = 80, agent: IAgent | None = None) -> int:
    """Run ``dssr sim`` with parsed ``args`` on ``reactor``, printing to ``out``/``err``.

    ``agent`` (an ``IAgent``; default: the reactor's own HTTP client) carries the calls.
    """
    why = url_problem(args.url)
    if why:
        err.write(f"dssr sim: --url {args.url!r}: {why}\n")
        return EXIT_BAD_URL
    if agent is None:
        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    client = DSSRClient(agent, args.url, args.auth, reactor)
    display = Display(out, tty, width)
    follower = Follower(client, reactor, display, args.interval, args.timeout)
    spec = JobSpec(command=args.job_command, cores=args.cores, arch=args.arch, repo=args.repo,
                   exclusive=args.exclusive, direct=args.direct)
    when, token = reactor.seconds(), secrets.token_hex(3)
    try:
        for index in range(1, args.jobs + 1):
            name = job_name(args.name, when, token, index if args.jobs > 1 else None)
            await follower.submit(name, index, args.nodes, args.cores, args.job_command,
                                  hpc_script(spec), args.held)
        await follower.follow()
    except DSSRError as error:
        display.close()
        err.write(f"dssr sim: DSSR error: {error}\n")
        for job in follower.live():
            err.write(f"dssr sim: left on DSSR: {job.ref.path}\n")
        return EXIT_DSSR_ERROR
    display.close()
    display.lines([show.ended_line(job) for job in follower.live()])
    if args.jobs > 1:
        display.lines(show.summary_lines(follower.jobs))
    return overall_exit(follower.jobs)


def run(args: argparse.Namespace) -> int:
    """The ``dssr sim`` command: simulate in a reactor of its own; the exit code."""
    async def main(reactor: Any) -> NoReturn:
        raise SystemExit(await simulate(reactor, args, sys.stdout, sys.stderr,
                                        sys.stdout.isatty(),
                                        shutil.get_terminal_size().columns))
    try:
        react(main)
    except SystemExit as done:  # react() always exits; the dssr command wants the code
        return cast(int, done.code)  # simulate's
