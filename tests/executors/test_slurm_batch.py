"""The batch job (as the sbatch command line it makes) and the batch script text."""

import shlex

from twisted.trial.unittest import SynchronousTestCase

from dssr.executors.header import parse_header
from dssr.executors.slurm_batch import CHUNK, batch_job, slurm_batch_script
from dssr.jobfiles import SBATCH_JOBID, job_paths, name_prefix
from dssr.slurm.commands import sbatch
from tests.executors.sample import template

NAME = "20261124140000-A1B2C-jarvice-ubuntu-kirby_s1"


def argv_for(held=False, nodes=2, scratch="/scratch/", **header):
    job = batch_job(NAME, nodes, parse_header(template(**header)),
                    job_paths(scratch, NAME, SBATCH_JOBID).output, name_prefix(scratch, NAME),
                    held, "echo hi\n")
    return sbatch(job)


class SbatchArgvTests(SynchronousTestCase):
    def test_minimal(self):
        self.assertEqual(argv_for(), [
            "sbatch", "--parsable", "-J", f"jarvice_{NAME}",
            "-o", f"/scratch/.jarvice/{NAME}.%j.out", "-n", "8", "-N", "2", "--exclusive"])

    def test_everything(self):
        argv = argv_for(
            held=True, nodes=3, JOBOBJ_RAM="64", JOBOBJ_GPUS="2", JOBOBJ_WALLTIME="01:00:00",
            JOBOBJ_LICENSES="matlab:1,ansys",
            JOBOBJ_DEVICES='["partition=gpu", "sbatch_constraint=a100&ib", '
                           '"sbatch_requeue=true", "sbatch_comment=it\'s $HOME"]')
        self.assertEqual(argv, [
            "sbatch", "--parsable", "-J", f"jarvice_{NAME}",
            "-o", f"/scratch/.jarvice/{NAME}.%j.out", "-n", "12", "-N", "3",
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
        # Each interactive job gets its own port: no need for whole nodes.
        self.assertNotIn("--exclusive", argv_for(JOBOBJ_DEVICES=off, JOBOBJ_INTERACTIVE="True"))


class BatchScriptTextTests(SynchronousTestCase):
    def test_shape(self):
        text = slurm_batch_script("echo hi\n", "/s/.jarvice/n.")
        self.assertTrue(text.startswith("#!/bin/bash\n"))
        self.assertIn('DSSR_JOB_FILES=/s/.jarvice/n."$SLURM_JOB_ID"\n', text)
        self.assertIn('srun -N "$SLURM_NNODES" -n "$SLURM_NNODES" --ntasks-per-node=1', text)
        self.assertIn("trap dssr_cancelled TERM", text)
        self.assertNotIn("echo hi", text)

    def test_end_record_path_quoted(self):
        text = slurm_batch_script("", "/it's $HOME/n.")
        self.assertIn("DSSR_JOB_FILES='/it'\"'\"'s $HOME/n.'\"$SLURM_JOB_ID\"\n", text)

    def test_chunks(self):
        text = slurm_batch_script("x" * (CHUNK * 2), "e")
        self.assertIn("export DSSR_PAYLOAD_2=", text)
        self.assertNotIn("DSSR_PAYLOAD_3", text)
        for line in text.splitlines():
            self.assertLessEqual(len(line), CHUNK + 40)
