"""``dssr sim`` against a DSSR with the slurm connector on the rig: real jobs, real rcs."""

import argparse
import io
import re

from twisted.internet import reactor

from dssr import sim
from tests.integration.rig import RigCase


class SimOnSlurmTests(RigCase):
    async def simulate(self, *argv: str) -> tuple[int, list[str]]:
        """Run ``dssr sim`` against this test's DSSR; (exit code, stdout lines)."""
        parser = argparse.ArgumentParser()
        sim.configure(parser)
        # --timeout: a job the test does not see end is terminated (and collected) by sim
        args = parser.parse_args(["--url", self.base, "--name", "it-sim", "--interval", "0.5",
                                  "--timeout", "60", *argv])
        out, err = io.StringIO(), io.StringIO()
        code = await sim.simulate(reactor, args, out, err, tty=False)
        self.assertEqual(err.getvalue(), "")
        return code, out.getvalue().splitlines()

    async def test_command_that_succeeds(self):
        code, lines = await self.simulate(
            "--command", "echo sim-said-$((6 * 7)); sleep 2; echo later; sleep 1")
        self.assertEqual(code, 0)
        name = lines[0].split(":")[0]
        node = self.environment["DSSR_RIG_NODE"]
        running = [index for index, line in enumerate(lines)
                   if re.fullmatch(rf"{name}: running on {node} \(elapsed 00:00:0\d\)", line)]
        said = lines.index("sim-said-42")
        self.assertEqual(len(running), 1)
        self.assertLess(running[0], said)
        self.assertEqual(lines[said + 1:said + 3], ["later", "JARVICE_CMD_SUCCESS"])
        self.assertEqual((lines.count("sim-said-42"), lines.count("later")), (1, 1))
        self.assertRegex(lines[-1], rf"^{name}: ended, rc 0 \(exit 0\) after 00:00:\d\d: "
                                    r"<< termination state: COMPLETED")

    async def test_command_that_fails(self):
        code, lines = await self.simulate("--command", "echo about-to-fail; exit 7")
        self.assertEqual(code, 1)
        self.assertIn("about-to-fail", lines)
        self.assertNotIn("JARVICE_CMD_SUCCESS", lines)
        self.assertRegex(lines[-1], r": ended, rc 1 \(exit 1\) after 00:00:\d\d: "
                                    r"<< termination state: FAILED")

    async def test_timeout_cancels_the_job(self):
        code, lines = await self.simulate("--command", "echo waiting; sleep 120",
                                          "--timeout", "4")
        self.assertEqual(code, 3)
        self.assertIn("still not ended after --timeout 4 s; terminating it", "\n".join(lines))
        self.assertRegex(lines[-1], r": ended, rc -15 \(exit 143\) after 00:00:\d\d: "
                                    r"<< termination state: CANCELLED")
