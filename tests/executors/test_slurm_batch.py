"""The sbatch command line, the batch script text, and the end record parser."""

import shlex

from twisted.trial.unittest import SynchronousTestCase

from dssr.executors.header import parse_header
from dssr.executors.slurm_batch import (
    CHUNK,
    EndRecord,
    JobFiles,
    job_files,
    parse_end_record,
    sbatch_argv,
    slurm_batch_script,
)
from tests.executors.sample import template

NAME = "20261124140000-A1B2C-jarvice-ubuntu-kirby_s1"


def argv_for(held=False, nodes=2, scratch="/scratch/", **header):
    return sbatch_argv(NAME, nodes, parse_header(template(**header)), scratch, held)


class JobFilesTests(SynchronousTestCase):
    def test_paths(self):
        self.assertEqual(job_files("/scratch", "n"),
                         JobFiles("/scratch/.jarvice/n.out", "/scratch/.jarvice/n.end"))
        self.assertEqual(job_files("/scratch/", "n").output, "/scratch/.jarvice/n.out")
        self.assertEqual(job_files("", "n").output, ".jarvice/n.out")


class SbatchArgvTests(SynchronousTestCase):
    def test_minimal(self):
        self.assertEqual(argv_for(), [
            "sbatch", "--parsable", "-J", f"jarvice_{NAME}",
            "-o", f"/scratch/.jarvice/{NAME}.out", "-n", "8", "-N", "2", "--exclusive"])

    def test_everything(self):
        argv = argv_for(
            held=True, nodes=3, JOBOBJ_RAM="64", JOBOBJ_GPUS="2", JOBOBJ_WALLTIME="01:00:00",
            JOBOBJ_LICENSES="matlab:1,ansys",
            JOBOBJ_DEVICES='["partition=gpu", "sbatch_constraint=a100&ib", '
                           '"sbatch_requeue=true", "sbatch_comment=it\'s $HOME"]')
        self.assertEqual(argv, [
            "sbatch", "--parsable", "-J", f"jarvice_{NAME}",
            "-o", f"/scratch/.jarvice/{NAME}.out", "-n", "12", "-N", "3",
            "-p", "gpu", "--mem=64G", "--gpus-per-node=2", "--exclusive",
            "--time=01:00:00", "-L", "matlab:1,ansys", "-H",
            "--constraint=a100&ib", "--requeue", "--comment=it's $HOME"])

    def test_argv_survives_a_shell(self):
        argv = argv_for(JOBOBJ_DEVICES='["sbatch_comment=a;b `c` $(d) \'e\'"]')
        self.assertEqual(shlex.split(shlex.join(argv)), argv)

    def test_exclusive_rules(self):
        off = '["exclusive=False"]'
        self.assertNotIn("--exclusive", argv_for(JOBOBJ_DEVICES=off))
        self.assertIn("--exclusive", argv_for(JOBOBJ_DEVICES='["exclusive=True"]'))
        self.assertIn("--exclusive", argv_for(JOBOBJ_DEVICES=off, JOBOBJ_GPUS="1"))
        self.assertIn("--exclusive", argv_for(JOBOBJ_DEVICES=off, JOBOBJ_INTERACTIVE="True"))


class BatchScriptTextTests(SynchronousTestCase):
    def test_shape(self):
        text = slurm_batch_script("echo hi\n", "/s/.jarvice/n.end")
        self.assertTrue(text.startswith("#!/bin/bash\n"))
        self.assertIn("DSSR_END_RECORD=/s/.jarvice/n.end\n", text)
        self.assertIn('srun -N "$SLURM_NNODES" -n "$SLURM_NNODES" --ntasks-per-node=1', text)
        self.assertIn("trap dssr_cancelled TERM", text)
        self.assertNotIn("echo hi", text)

    def test_end_record_path_quoted(self):
        text = slurm_batch_script("", "/it's $HOME/n.end")
        self.assertIn("DSSR_END_RECORD='/it'\"'\"'s $HOME/n.end'\n", text)

    def test_chunks(self):
        text = slurm_batch_script("x" * (CHUNK * 2), "e")
        self.assertIn("export DSSR_PAYLOAD_2=", text)
        self.assertNotIn("DSSR_PAYLOAD_3", text)
        for line in text.splitlines():
            self.assertLessEqual(len(line), CHUNK + 40)


class EndRecordTests(SynchronousTestCase):
    def test_parse(self):
        record = parse_end_record(
            "STATE=COMPLETED\nEXIT_CODE=0\nSTEP_EXIT_CODE=0\nSTART=100\nEND=160\n")
        self.assertEqual(record, EndRecord("COMPLETED", 0, 100, 160))
        self.assertEqual(record.seconds, 60)

    def test_cancelled(self):
        record = parse_end_record("STATE=CANCELLED\nEXIT_CODE=143\nSTART=5\nEND=4\n")
        self.assertEqual((record.state, record.exit_code, record.seconds),
                         ("CANCELLED", 143, 0))

    def test_incomplete_or_garbled(self):
        for text in ("", "STATE=COMPLETED\nEXIT_CODE=0\nSTART=1\n",
                     "STATE=COMPLETED\nEXIT_CODE=x\nSTART=1\nEND=2\n",
                     "STATE=RUNNING\nEXIT_CODE=0\nSTART=1\nEND=2\n", "garbage"):
            self.assertIsNone(parse_end_record(text))
