"""Tests for dssr.slurm.commands: argv lists, and job ids refused when not digits."""

from dataclasses import replace
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from dssr.slurm import commands
from dssr.slurm.interfaces import BatchJob

README = Path(__file__).parents[1] / "fixtures" / "slurm" / "README.rst"
BAD_JOBIDS = ["", "12a", "-1", "1 2", "1;true", "$(id)", "\uff11\uff12", "12\n"]


class CommandTests(SynchronousTestCase):
    """Each builder gives the argv DSSR runs."""

    def test_squeue_snapshot(self) -> None:
        """One squeue for the jobs of DSSR's users, in the format the parser reads,
        each record led by the call's token."""
        self.assertEqual(
            commands.squeue_snapshot(("svc", "alice"), "ab12"),
            ["squeue", "--noheader", "--all", "--states=all", "--user=svc,alice",
             "--format=ab12|%i|%T|%M|%N|%u|%r|%j"],
        )
        self.assertEqual(commands.squeue_snapshot((), "ab12")[4], "--me")
        self.assertRaises(ValueError, commands.squeue_snapshot, ("svc",), "%j|x")

    def test_snapshot_format_is_the_captured_one(self) -> None:
        """The fixtures were captured with the format the command uses."""
        captured = README.read_text().replace("\\|", "|")
        self.assertIn(f"--format={commands.SNAPSHOT_FORMAT}``", captured)

    def test_job_commands(self) -> None:
        """scontrol show/release, scancel and sacct take the job id as its own word."""
        self.assertEqual(commands.scontrol_show_job("42"), ["scontrol", "show", "job", "42"])
        self.assertEqual(commands.scontrol_release("42"), ["scontrol", "release", "42"])
        self.assertEqual(commands.scancel("42"), ["scancel", "42"])
        self.assertEqual(
            commands.sacct_job("42"),
            ["sacct", "--noheader", "--parsable2", "--jobs=42",
             "--format=JobID,State,ExitCode,Elapsed,JobName"],
        )

    def test_bad_jobids(self) -> None:
        """Anything but ASCII digits is refused before it reaches a command line."""
        builders = [
            commands.scontrol_show_job, commands.scontrol_release, commands.scancel,
            commands.sacct_job,
        ]
        for builder in builders:
            for jobid in BAD_JOBIDS:
                with self.subTest(builder=builder.__name__, jobid=jobid):
                    self.assertRaises(ValueError, builder, jobid)

    def test_ping(self) -> None:
        """scontrol ping."""
        self.assertEqual(commands.scontrol_ping(), ["scontrol", "ping"])

    def test_sbatch(self) -> None:
        """Only the options a job sets, in a fixed order; extra options last."""
        job = BatchJob(name="jarvice_n", script="#!/bin/bash\n", output="o", nodes=2, tasks=8)
        self.assertEqual(commands.sbatch(job), ["sbatch", "--parsable", "-J", "jarvice_n",
                                                "-o", "o", "-n", "8", "-N", "2", "--exclusive"])
        job = replace(job, exclusive=False, extra=(("requeue", ""), ("comment", "a b")))
        self.assertEqual(commands.sbatch(job)[-2:], ["--requeue", "--comment=a b"])
        self.assertNotIn("--exclusive", commands.sbatch(job))
