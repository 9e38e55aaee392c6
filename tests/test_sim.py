"""``dssr sim``: its pure parts, and whole runs against a DSSR on the dummy connector."""

import argparse
import base64
import io
import json
import os
import shlex
import sys

from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from dssr import sim
from dssr.api import DSSRApi
from dssr.connectors.dummy import SCHEMA, DummyConnector
from dssr.edge import make_site
from dssr.executors.header import Devices, parse_header
from dssr.executors.template import fill_template
from dssr.jobs import JobRef
from dssr.simulator.client import ExitStatus, basic_auth
from dssr.simulator.display import (
    CLEAR,
    Display,
    ended_line,
    progress_text,
    summary_lines,
    waited,
)
from dssr.simulator.follow import Follower
from dssr.simulator.job import SimJob, exit_code, overall_exit
from dssr.simulator.script import JobSpec, hpc_script, job_name, script_text
from dssr.simulator.tail import SKIPPED, OutputFollower, complete_lines, unseen
from dssr.validate import NAME
from tests.fakes import MemoryPool, served

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEN = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sim.configure(parser)
    return parser.parse_args(argv)


def ended(name: str, rc: int, jobid: str = "7", terminated: bool = False) -> SimJob:
    job = SimJob(JobRef(name, 1, jobid), WHEN, state="ended", terminated=terminated)
    job.result = ExitStatus(rc, "00:00:04", "", "")
    return job


class JobNameTests(SynchronousTestCase):
    def test_prefix_time_and_token(self):
        self.assertEqual(job_name("sim", WHEN, "a1b2c3"), "sim-20231114221320-a1b2c3")
        self.assertEqual(job_name("sim", WHEN, "a1b2c3", 4), "sim-20231114221320-a1b2c3-4")

    def test_made_valid_for_the_api(self):
        self.assertEqual(job_name("my job/é", WHEN, "x"), "my-job--20231114221320-x")
        self.assertEqual(job_name("--._", WHEN, "x"), "sim-20231114221320-x")
        long = job_name("p" * 400, WHEN, "abcdef", 12)
        self.assertTrue(NAME.fullmatch(long))
        self.assertTrue(long.endswith("-20231114221320-abcdef-12"))


class ScriptTests(SynchronousTestCase):
    def test_header_is_what_the_executor_requires(self):
        command = "echo 'it''s' {braces} ${HOME}"
        params = parse_header(script_text(JobSpec(command=command, cores=2)))
        self.assertEqual(
            (params.appdef_version, params.cores, params.arch, params.repo, params.interactive,
             params.devices),
            (2, 2, "amd64", "docker.io/library/ubuntu:24.04", False, Devices(exclusive=False)))
        self.assertEqual(params.jarvice_cmd, shlex.quote(command))

    def test_exclusive_arch_and_repo(self):
        params = parse_header(script_text(JobSpec("true", arch="arm64", repo="quay.io/x/y:1",
                                                  exclusive=True)))
        self.assertEqual((params.arch, params.repo, params.devices.exclusive),
                         ("arm64", "quay.io/x/y:1", True))

    def test_only_the_downstream_parameters_field(self):
        text = script_text(JobSpec("echo {x}"))
        self.assertEqual(text.count("{DOWNSTREAM_PARAMETERS}"), 1)
        filled = fill_template(text, "export X=1\n")
        self.assertIn("JARVICE_CMD='echo {x}'\nexport X=1\n", filled)

    def test_hpc_script_is_base64_under_the_executor(self):
        spec = JobSpec("true")
        (key, value), = hpc_script(spec).items()
        self.assertEqual((key, base64.b64decode(value).decode()),
                         ("singularity", script_text(spec)))

    def test_singularity_body_runs_the_command_in_the_app_image(self):
        direct = script_text(JobSpec("true"))
        contained = script_text(JobSpec("true", direct=False))
        self.assertNotIn("singularity ", direct)
        self.assertIn('exec --containall --writable-tmpfs "$JARVICE_APP_IMAGE"', contained)
        self.assertIn('/bin/bash -c "$JARVICE_CMD" && /bin/echo JARVICE_CMD_SUCCESS', contained)


class DirectBodyTests(TestCase):
    """The --direct script, filled as DSSR fills it, run by bash."""

    async def run_filled(self, command: str) -> tuple[bytes, int]:
        text = script_text(JobSpec(command))
        block = f"export JARVICE_CMD={parse_header(text).jarvice_cmd}\n"
        out, _, code = await getProcessOutputAndValue(
            "/bin/bash", ["-c", fill_template(text, block)], env={"PATH": os.environ["PATH"]})
        return out, code

    async def test_success_mark_when_the_command_exits_0(self):
        out, _ = await self.run_filled("echo \"it's {here}\"")
        self.assertEqual(out, b"it's {here}\nJARVICE_CMD_SUCCESS\n")

    async def test_no_mark_when_the_command_fails(self):
        out, _ = await self.run_filled("echo no; exit 3")
        self.assertEqual(out, b"no\n")


class TailTests(SynchronousTestCase):
    def test_partial_last_line_waits_for_the_end(self):
        self.assertEqual(complete_lines("a\nb\npart", final=False), ["a", "b"])
        self.assertEqual(complete_lines("a\nb\npart", final=True), ["a", "b", "part"])
        self.assertEqual(complete_lines("a\n", final=True), ["a"])
        self.assertEqual(complete_lines("", final=True), [])

    def test_short_tail_is_the_whole_output(self):
        self.assertEqual(unseen(["x", "x", "x"], 1, ["x"], 10), (["x", "x"], False))

    def test_full_tail_picks_up_after_the_printed_lines(self):
        self.assertEqual(unseen(["c", "d", "e", "f"], 4, ["a", "b", "c", "d"], 4),
                         (["e", "f"], False))

    def test_bigger_window_starting_earlier(self):
        lines = [str(n) for n in range(20)]
        self.assertEqual(unseen(lines, 15, lines[10:15], 20), (lines[15:], False))

    def test_gap_is_reported(self):
        self.assertEqual(unseen(["x", "y"], 2, ["a", "b"], 2), (["x", "y"], True))

    def test_follower_prints_each_line_once(self):
        follower = OutputFollower(keep=10)
        self.assertEqual(follower.new_lines("a\nb\nc", 3), ["a", "b"])
        self.assertEqual(follower.new_lines("b\nc\nd\n", 3), ["c", "d"])
        self.assertEqual(follower.new_lines("e\nf\ng\n", 3), [SKIPPED, "e", "f", "g"])
        self.assertEqual(follower.new_lines("a\nb\nc\nd\ne\nf\ng\nend", 100, final=True),
                         ["end"])


class ExitCodeTests(SynchronousTestCase):
    def test_rc_to_exit_code(self):
        self.assertEqual([exit_code(rc) for rc in (0, 1, -15, -9, 300, -200)],
                         [0, 1, 143, 137, 255, 255])

    def test_one_job_mirrors_its_rc(self):
        self.assertEqual(overall_exit([ended("a", -15)]), 143)
        self.assertEqual(overall_exit([ended("a", 0, terminated=True)]), 3)

    def test_many_jobs_succeed_only_together(self):
        self.assertEqual(overall_exit([ended("a", 0), ended("b", 0)]), 0)
        self.assertEqual(overall_exit([ended("a", 0), ended("b", -9)]), 1)


class DisplayTests(SynchronousTestCase):
    def test_waited(self):
        self.assertEqual([waited(s) for s in (0, 61.9, 3725)], ["0:00", "1:01", "1:02:05"])

    def test_progress_of_one_job(self):
        job = SimJob(JobRef("j", 1, "42"), WHEN, state="queued")
        self.assertEqual(progress_text([job], WHEN + 5, WHEN), "j (job 42): queued 0:05")
        job.held = True
        self.assertEqual(progress_text([job], WHEN + 5, WHEN), "j (job 42): held 0:05")
        job.state, job.nodes, job.elapsed = "running", ("n1", "n2"), "00:00:03"
        self.assertEqual(progress_text([job], WHEN + 9, WHEN),
                         "j (job 42): running 00:00:03 on n1 n2")

    def test_progress_of_many(self):
        jobs = [SimJob(JobRef("q", 1, "1"), WHEN, state="queued"),
                SimJob(JobRef("r", 2, "2"), WHEN, state="running"), ended("e", 1)]
        self.assertEqual(progress_text(jobs, WHEN + 70, WHEN),
                         "3 jobs: 1 queued, 1 running, 1 ended (1 failed) after 1:10")

    def test_ended_line(self):
        job = ended("j", -15)
        job.result = ExitStatus(-15, "00:01:00", "", "<< termination state: CANCELLED >>")
        self.assertEqual(ended_line(job), "j: ended, rc -15 (exit 143) after 00:01:00: "
                                          "<< termination state: CANCELLED >>")

    def test_summary(self):
        self.assertEqual(summary_lines([ended("one", 0, "5"), ended("three", 1, "12")]), [
            "summary:",
            "  one    job      5  rc   0  00:00:04",
            "  three  job     12  rc   1  00:00:04",
            "2 jobs: 1 succeeded, 1 rc 1",
        ])

    def test_plain_output_has_no_control_characters(self):
        out = io.StringIO()
        display = Display(out, tty=False)
        display.line("a")
        display.progress("working")
        display.line("b")
        display.close()
        self.assertEqual(out.getvalue(), "a\nb\n")

    def test_terminal_keeps_a_progress_line_below(self):
        out = io.StringIO()
        display = Display(out, tty=True, width=30)
        display.line("a")
        display.progress("p" * 40)
        display.line("b")
        display.close()
        shown = "p" * 29  # cut to the width, the last column left free
        self.assertEqual(out.getvalue(), f"a\n{CLEAR}{shown}{CLEAR}b\n{shown}{CLEAR}")


class StartingBetweenListsClient:
    """A DSSR whose one job starts right after whichever list is asked first."""

    def __init__(self, ref: JobRef):
        self.ref, self.state, self.asked = ref, "queued", []

    async def listed(self, which: str) -> set:
        self.asked.append(which)
        shown = {(self.ref.name, self.ref.jobid)} if which == self.state else set()
        self.state = "running"
        return shown

    async def runstatus(self, ref: JobRef):
        return None

    async def tail(self, path: str) -> str:
        return ""

    async def exitstatus(self, ref: JobRef):
        raise AssertionError("/exitstatus asked for a job that never left the lists")


class FollowerTests(SynchronousTestCase):
    def test_a_job_starting_between_the_two_lists_is_not_taken_for_ended(self):
        client = StartingBetweenListsClient(JobRef("t-1", 1, "7"))
        follower = Follower(client, Clock(), Display(io.StringIO(), tty=False), 1.0)
        follower.jobs.append(SimJob(client.ref, 0.0))
        self.successResultOf(ensureDeferred(follower.poll()))
        self.assertEqual(follower.jobs[0].state, "running")
        self.assertEqual(client.asked, ["queued", "running"])


class AskAgainClient(StartingBetweenListsClient):
    """A DSSR whose job is in neither list once while still in the queue."""

    def __init__(self, ref: JobRef):
        super().__init__(ref)
        self.state, self.exitstatus_asked = "neither", 0

    async def listed(self, which: str) -> set:
        return set()

    async def exitstatus(self, ref: JobRef):
        self.exitstatus_asked += 1
        return None if self.exitstatus_asked == 1 else ExitStatus(0, "00:00:01", "", "")


class AskAgainTests(SynchronousTestCase):
    def test_exitstatus_that_says_ask_again_is_asked_again(self):
        client = AskAgainClient(JobRef("t-1", 1, "7"))
        follower = Follower(client, Clock(), Display(io.StringIO(), tty=False), 1.0)
        follower.jobs.append(SimJob(client.ref, 0.0))
        self.successResultOf(ensureDeferred(follower.poll()))
        self.assertEqual((follower.jobs[0].state, follower.jobs[0].result), ("submitted", None))
        self.successResultOf(ensureDeferred(follower.poll()))
        self.assertEqual(follower.jobs[0].result.rc, 0)


class SimulatedCase(SynchronousTestCase):
    """``dssr sim`` against a DSSR with the dummy connector, in memory, on a ``Clock``."""

    server_key = "upstream:pw"
    STEP = 0.05  # seconds of simulated time between rounds of in-memory exchanges

    def serve(self, queued_time=0.2, running_time=1.2, failing_percent=0) -> str:
        self.clock = Clock()
        connector = DummyConnector(":memory:", self.clock, self.mktemp(),
                                   queued_time=queued_time, running_time=running_time,
                                   failing_percent=failing_percent)
        connector.service.pool = MemoryPool(SCHEMA)
        self.agent = served(DSSRApi(connector, server_key=self.server_key))
        return "http://dssr.test"

    def simulate(self, url: str, *argv: str, tty: bool = False):
        """Run ``dssr sim`` to its end: (exit code, stdout lines, stderr).

        The lines are split at newlines only (a terminal's ``\\r`` stays in them); the
        whole text is kept as ``self.stdout``.
        """
        args = parse("--url", url, "--auth", self.server_key, "--interval", "0.1",
                     "--name", "t", *argv)
        out, err = io.StringIO(), io.StringIO()
        done = ensureDeferred(sim.simulate(self.clock, args, out, err, tty, width=200,
                                           agent=self.agent))
        for _ in range(int(600 / self.STEP)):
            for _ in range(20):  # each call of a poll waits for the one before
                self.agent.flush()
            if done.called:
                break
            self.clock.advance(self.STEP)
        code = self.successResultOf(done)
        self.stdout = out.getvalue()
        lines = self.stdout.removesuffix("\n").split("\n") if self.stdout else []
        return code, lines, err.getvalue()


class SimAgainstDummyTests(SimulatedCase):
    def test_job_that_completes_exits_0(self):
        code, lines, err = self.simulate(self.serve(), "--command", "echo hi")
        self.assertEqual((code, err), (0, ""))
        name = lines[0].split(":")[0]
        self.assertRegex(name, r"^t-\d{14}-[0-9a-f]{6}$")
        self.assertEqual(lines[0], f"{name}: submitted as job 1 (1 node(s) x 1 core(s)): echo hi")
        self.assertEqual(lines[1], f"{name}: queued")
        self.assertRegex(lines[2], rf"^{name}: running on dummy0 \(elapsed 00:00:0[01]\)$")
        self.assertEqual(lines[3], "started on dummy0 (the dummy cluster runs no command)")
        self.assertEqual(lines[-3:], [
            "working, second 1", "completed",
            f"{name}: ended, rc 0 (exit 0) after 00:00:01: "
            "<< termination state: COMPLETED -- see STDOUT for job errors >>"])
        self.assertEqual(len(lines), 7)  # every output line exactly once

    def test_job_that_fails_exits_1(self):
        code, lines, _ = self.simulate(self.serve(failing_percent=100), "--nodes", "2")
        self.assertEqual(code, 1)
        self.assertIn("running on dummy0 dummy1", lines[2])
        self.assertRegex(lines[-1], r": ended, rc 1 \(exit 1\) after 00:00:01: "
                                    r"<< termination state: FAILED")

    def test_timeout_terminates_and_exits_3(self):
        code, lines, _ = self.simulate(self.serve(running_time=60), "--timeout", "0.6")
        self.assertEqual(code, 3)
        name = lines[0].split(":")[0]
        terminating = lines.index(f"{name}: still not ended after --timeout 0.6 s; "
                                  "terminating it")
        self.assertEqual(lines[terminating + 1:-1], ["cancelled"])
        self.assertRegex(lines[-1], r": ended, rc -15 \(exit 143\) after 00:00:00: "
                                    r"<< termination state: CANCELLED")

    def test_held_job_is_released_once_queued(self):
        code, lines, _ = self.simulate(self.serve(), "--held")
        self.assertEqual(code, 0)
        self.assertEqual([line.split(": ", 1)[1] for line in lines[1:3]],
                         ["queued (held)", "released"])
        self.assertTrue(lines[0].endswith("(1 node(s) x 1 core(s), held): " + sim.DEFAULT_COMMAND))

    def test_many_jobs_and_a_summary(self):
        code, lines, _ = self.simulate(self.serve(running_time=0.5), "--jobs", "3")
        self.assertEqual(code, 0)
        self.assertEqual([line.split()[0] for line in lines if line.startswith("[")][:1],
                         [f"[{lines[0].split(':')[0]}]"])
        output = [line for line in lines if line.startswith("[")]
        self.assertTrue(output)
        for line in output:  # each output line names its job once
            self.assertEqual(line.count(line[1:line.index("]")]), 1, line)
        summary = lines[lines.index("summary:"):]
        self.assertEqual(len(summary), 5)
        self.assertRegex(summary[1], r"^  t-\d{14}-[0-9a-f]{6}-1  job      1  rc   0  00:00:00$")
        self.assertEqual(summary[-1], "3 jobs: 3 succeeded")

    def test_many_jobs_with_failures_exit_1(self):
        code, lines, _ = self.simulate(self.serve(running_time=0.3, failing_percent=100),
                                             "--jobs", "2")
        self.assertEqual((code, lines[-1]), (1, "2 jobs: 0 succeeded, 2 rc 1"))

    def test_terminal_shows_live_progress(self):
        code, _, _ = self.simulate(self.serve(), tty=True)
        self.assertEqual(code, 0)
        text = self.stdout
        self.assertRegex(text, r"\x1b\[K\S+ \(job 1\): queued 0:00")
        self.assertRegex(text, r"\x1b\[K\S+ \(job 1\): running 00:00:0[01] on dummy0")
        self.assertTrue(text.endswith(CLEAR))

    def test_wrong_key_is_a_dssr_error(self):
        self.server_key = "upstream:wrong"
        url = self.serve()
        self.server_key = "upstream:pw"
        code, lines, err = self.simulate(url)
        self.assertEqual((code, lines), (2, []))
        self.assertRegex(err, r"^dssr sim: DSSR error: /submit: DSSR answered 401: ")

    def test_url_without_a_scheme_is_one_line_and_its_own_exit_code(self):
        # Was: a SchemeNotSupported traceback and exit 1, which --help says is a job's.
        self.serve()
        for url in ("localhost:5000", "ftp://dssr:5000", "http://", "http://h:port"):
            code, lines, err = self.simulate(url)
            self.assertEqual((code, lines), (4, []), url)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertTrue(err.startswith(f"dssr sim: --url {url!r}: "), err)
        self.assertIn("4: --url is not an http:// or https:// URL", sim.EPILOG)

    def test_auth_from_the_environment(self):
        os.environ[sim.AUTH_ENV] = "someone:secret"
        self.addCleanup(os.environ.pop, sim.AUTH_ENV)
        self.assertEqual(parse().auth, "someone:secret")
        self.assertEqual(basic_auth("someone:secret"), b"Basic c29tZW9uZTpzZWNyZXQ=")


class RealPortTests(TestCase):
    """What only a real socket and a real process show, in real (short) time."""

    server_key = SimulatedCase.server_key

    def serve(self, failing_percent=0) -> str:
        state = self.mktemp()
        connector = DummyConnector(os.path.join(state, "db.sqlite"), reactor,
                                   os.path.join(state, "data"), queued_time=0.2,
                                   running_time=1.2, failing_percent=failing_percent)
        connector.service.startService()
        self.addCleanup(connector.service.stopService)
        port = reactor.listenTCP(0, make_site(DSSRApi(connector, server_key=self.server_key)),
                                 interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}"

    async def test_unreachable_dssr_is_a_dssr_error(self):
        port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        url = f"http://127.0.0.1:{port.getHost().port}"
        await port.stopListening()
        args = parse("--url", url, "--auth", self.server_key, "--name", "t")
        out, err = io.StringIO(), io.StringIO()
        code = await sim.simulate(reactor, args, out, err, False, width=200)
        self.assertEqual(code, 2)
        self.assertIn(f"/submit: cannot reach DSSR at {url}: ", err.getvalue())
        self.assertIn("refused", err.getvalue())

    async def test_python_m_dssr_sim(self):
        url = self.serve(failing_percent=100)
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ["-m", "dssr", "sim", "--url", url, "--interval", "0.1",
                             "--command", "false"],
            env={**os.environ, sim.AUTH_ENV: self.server_key}, path=ROOT)
        self.assertEqual(code, 1, err)
        lines = out.decode().splitlines()
        self.assertTrue(lines[0].endswith("(1 node(s) x 1 core(s)): false"))
        self.assertRegex(lines[-1], r": ended, rc 1 \(exit 1\)")
        self.assertNotIn("\r", out.decode())
        self.assertEqual(json.loads(json.dumps(err.decode())), "")
