"""The generated batch script, run by bash with a fake srun and scontrol.

The fake srun runs the task command once per node, as local processes, with the
per-task SLURM_* variables real srun would set.
"""

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from dssr.executors.slurm_batch import CHUNK, AppPlan, slurm_batch_script
from dssr.jobfiles import EndRecord, parse_app_record, parse_end_record
from tests.integration.sshd import free_port

FAKE_SRUN = """\
#!/bin/bash
printf '%s\\n' "$@" > "$FAKE_DIR/srun.args"
[ -n "$FAKE_SRUN_FAIL" ] && exit 1
while [ "$#" -gt 0 ] && [ "$1" != /bin/bash ]; do shift; done
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do
    SLURM_PROCID=$i SLURMD_NODENAME=node$i SLURM_NTASKS=$SLURM_NNODES "$@" &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
"""

FAKE_SCONTROL = """\
#!/bin/bash
[ "$1 $2 $3" = "show hostnames node[0-1]" ] && printf 'node0\\nnode1\\n'
"""

# squeue as the batch shell's TERM trap asks it: the job's pending/end reason.
FAKE_SQUEUE = """\
#!/bin/bash
[ "$*" = "--noheader --jobs=42 --format=%r" ] && printf '%s\\n' "$FAKE_REASON"
"""

# Everything the wrapper's shell must leave alone, including lines that look like
# heredoc markers (the test's own heredoc marker is TEST_MARK).
HAZARDS = """\
it's "quoted" 'single' $HOME ${HOME} $(id) `id` \\ \\\\ \\n
{DOWNSTREAM_PARAMETERS} {{ }} { } ${{x}} %s %(%s)T
EOF
'EOF'
DSSR_PAYLOAD_EOF
DSSR_PAYLOAD_0
'
"
\ttab, carriage\r return, unicode é ✓, trailing spaces   \
"""


class BatchRunTests(SynchronousTestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(self.dir)], check=False)
        bin_dir = self.dir / "bin"
        bin_dir.mkdir()
        for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL),
                           ("squeue", FAKE_SQUEUE)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        (self.dir / ".jarvice").mkdir()
        self.env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_DIR": str(self.dir),
            "OUT": str(self.dir), "SLURM_NNODES": "2", "SLURM_JOB_ID": "42",
            "SLURM_JOB_NODELIST": "node[0-1]", "SLURM_SUBMIT_DIR": str(self.dir),
            "SLURM_GPUS_PER_NODE": "1", "FAKE_REASON": "None",
        }
        self.record_path = self.dir / ".jarvice" / "job.42.end"

    def start(self, filled: str, app=None, **options) -> subprocess.Popen:
        batch = self.dir / "batch.sh"
        # A relative record path, as with an empty scratch dir: below the submit dir.
        batch.write_text(slurm_batch_script(filled, ".jarvice/job.", app, **options))
        # A file, like the job's output file: tasks left behind cannot hold a pipe open.
        with open(self.dir / "job.out", "wb") as output:
            return subprocess.Popen(["bash", str(batch)], cwd=self.dir, env=self.env,
                                    stdout=output, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def run_batch(self, filled: str) -> tuple[int, str, EndRecord | None]:
        process = self.start(filled)
        process.wait(timeout=60)
        record = parse_end_record(self.record_path.read_text(), "42")
        return process.returncode, (self.dir / "job.out").read_text(), record

    def test_success_from_rank_0(self):
        rc, output, record = self.run_batch(
            'echo "rank $PROCESS_PROCID"\n'
            '[ "$PROCESS_PROCID" = 0 ] && /bin/echo JARVICE_CMD_SUCCESS\nexit 0\n')
        self.assertEqual(rc, 0)
        self.assertIn("rank 0", output)
        self.assertIn("rank 1", output)
        self.assertIn("JARVICE Job completed OK", output)
        self.assertEqual((record.state, record.exit_code), ("COMPLETED", 0))
        self.assertLessEqual(record.start, record.end)
        self.assertLessEqual(abs(record.end - time.time()), 60)
        self.assertFalse((self.dir / ".jarvice" / "job.42.end.rank0").exists())
        self.assertFalse((self.dir / ".jarvice" / "job.42.end.tmp").exists())

    def test_success_only_on_another_rank_fails(self):
        rc, output, record = self.run_batch(
            '[ "$PROCESS_PROCID" = 1 ] && /bin/echo JARVICE_CMD_SUCCESS\nexit 0\n')
        self.assertEqual(rc, 1)
        self.assertIn("JARVICE Job failed", output)
        self.assertEqual((record.state, record.exit_code), ("FAILED", 1))

    def test_command_traces_do_not_count(self):
        rc, _, record = self.run_batch(
            "set -x\nfalse && /bin/echo JARVICE_CMD_SUCCESS\n"
            "/bin/echo JARVICE_CMD_SUCCESS >/dev/null\n")
        self.assertEqual((rc, record.state), (1, "FAILED"))

    def test_traced_success_counts(self):
        rc, _, record = self.run_batch("set -x\ntrue && /bin/echo JARVICE_CMD_SUCCESS\n")
        self.assertEqual((rc, record.state), (0, "COMPLETED"))

    def test_no_output_fails(self):
        rc, _, record = self.run_batch("exit 3\n")
        self.assertEqual((rc, record.state, record.exit_code), (1, "FAILED", 1))
        self.assertIn("STEP_EXIT_CODE=3\n", self.record_path.read_text())

    def test_leftovers_of_an_earlier_run_do_not_count(self):
        self.record_path.write_text("JOBID=42\nSTATE=COMPLETED\nEXIT_CODE=0\nSTART=1\nEND=2\n")
        (self.dir / ".jarvice" / "job.42.end.rank0").write_text("JARVICE_CMD_SUCCESS\n")
        self.env["FAKE_SRUN_FAIL"] = "1"
        rc, _, record = self.run_batch("/bin/echo JARVICE_CMD_SUCCESS\n")
        self.assertEqual((rc, record.state), (1, "FAILED"))

    def test_neutral_variables_and_clean_environment(self):
        self.run_batch('env > "$OUT/env.$PROCESS_PROCID"\n')
        for rank in (0, 1):
            lines = (self.dir / f"env.{rank}").read_text().splitlines()
            env = dict(line.split("=", 1) for line in lines if "=" in line)
            self.assertEqual(env["PROCESS_PROCID"], str(rank))
            self.assertEqual(env["PROCESS_NODENAME"], f"node{rank}")
            self.assertEqual(env["JOB_JOBID"], "42")
            self.assertEqual(env["JOB_JOB_NODELIST"], "node[0-1]")
            self.assertEqual(env["JOB_JOB_FORMATED_NODELIST"], "node0 node1")
            self.assertEqual(env["JOB_NNODES"], "2")
            self.assertEqual(env["JOB_NTASKS"], "2")
            self.assertEqual(env["JOB_SUBMIT_DIR"], str(self.dir))
            self.assertEqual(env["JOB_GPUS_PER_NODE"], "1")
            self.assertEqual([key for key in env if key.startswith("DSSR_")], [])
        args = (self.dir / "srun.args").read_text().splitlines()
        self.assertEqual(args[:5], ["-N", "2", "-n", "2", "--ntasks-per-node=1"])

    def hazard_script(self, hazards: str) -> str:
        return (f"cat > \"$OUT/copy.$PROCESS_PROCID\" <<'TEST_MARK'\n{hazards}\nTEST_MARK\n"
                "printf '%s\\n' 'it'\\''s' \"d\\\"q\" '$HOME' \"\\\\b\" '{a}' '{{b}}' "
                "> \"$OUT/args.$PROCESS_PROCID\"\n"
                "/bin/echo JARVICE_CMD_SUCCESS\n")

    def test_script_survives_byte_exact(self):
        rc, output, _ = self.run_batch(self.hazard_script(HAZARDS))
        self.assertEqual(rc, 0, output)
        for rank in (0, 1):
            self.assertEqual((self.dir / f"copy.{rank}").read_bytes(),
                             (HAZARDS + "\n").encode())
            self.assertEqual((self.dir / f"args.{rank}").read_text(),
                             "it's\nd\"q\n$HOME\n\\b\n{a}\n{{b}}\n")

    def test_large_script_in_several_chunks(self):
        big = "\n".join(f"line {n} {HAZARDS.splitlines()[n % 5]}" for n in range(8000))
        self.assertGreater(len(big.encode()) * 4 // 3, CHUNK * 3)
        rc, output, _ = self.run_batch(self.hazard_script(big))
        self.assertEqual(rc, 0, output)
        self.assertEqual((self.dir / "copy.1").read_bytes(), (big + "\n").encode())

    def terminated(self) -> tuple[str, EndRecord]:
        """Start a long job, send its batch shell SIGTERM (what scancel and the time
        limit do first); its output and end record."""
        process = self.start('touch "$OUT/running.$PROCESS_PROCID"\nsleep 60\n')
        self.addCleanup(self.kill_group, process)
        deadline = time.monotonic() + 30
        while not all((self.dir / f"running.{rank}").exists() for rank in (0, 1)):
            self.assertLess(time.monotonic(), deadline, "the tasks never started")
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGTERM)
        self.assertEqual(process.wait(timeout=10), 143)
        self.assertFalse((self.dir / ".jarvice" / "job.42.end.rank0").exists())
        return (self.dir / "job.out").read_text(), parse_end_record(
            self.record_path.read_text(), "42")

    def test_cancelled_job_still_writes_its_record(self):
        output, record = self.terminated()
        self.assertIn("JARVICE Job cancelled", output)
        self.assertEqual((record.jobid, record.state, record.exit_code),
                         ("42", "CANCELLED", 143))

    def test_time_limit_is_timeout(self):
        self.env["FAKE_REASON"] = "TimeLimit"
        output, record = self.terminated()
        self.assertIn("JARVICE Job reached its time limit", output)
        self.assertEqual((record.state, record.exit_code), ("TIMEOUT", 143))

    def test_terminate_marker_wins_over_the_time_limit(self):
        # /terminate at the very moment the limit passed: DSSR's own cancel it is.
        self.env["FAKE_REASON"] = "TimeLimit"
        (self.dir / ".jarvice" / "job.42.cancelled").touch()
        _, record = self.terminated()
        self.assertEqual(record.state, "CANCELLED")

    def test_interactive_app_gets_the_first_free_port_and_is_recorded_once_it_listens(self):
        taken, free = self.listening(), free_port()
        process, record = self.app(AppPlan((taken.getsockname()[1], free), "/job42/"))
        app_record = self.dir / ".jarvice" / "job.42.app"
        self.assertEqual(app_record.stat().st_mode & 0o777, 0o600)
        self.assertEqual((record.node, record.port), ("node0", free))  # Slurm's node name
        self.assertGreaterEqual(len(record.password), 24)
        self.assertEqual(record.url_template, "")  # the app has none
        environment = (self.dir / "env.0").read_text()
        self.assertIn(f"DSSR_SERVICE_PORT={free}\n", environment)
        self.assertIn(f"DSSR_SERVICE_PASSWORD={record.password}\n", environment)
        self.assertIn("DSSR_SERVICE_PATH=/job42/\n", environment)
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        self.assertFalse(app_record.exists())

    def test_a_port_an_outgoing_connection_holds_is_taken(self):
        # Nothing listens on it, but an app could not bind it: the next port it is.
        server, used, free = self.listening(), free_port(), free_port()
        client = socket.socket()
        self.addCleanup(client.close)
        client.bind(("127.0.0.1", used))
        client.connect(server.getsockname())
        _, record = self.app(AppPlan((used, free)))
        self.assertEqual(record.port, free)

    def test_no_record_when_every_port_is_taken(self):
        taken = self.listening()
        filled = ('env | grep ^DSSR_SERVICE_PORT= > "$OUT/env.$PROCESS_PROCID"\n'
                  '/bin/echo JARVICE_CMD_SUCCESS\n')
        process = self.start(filled, AppPlan((taken.getsockname()[1],)))
        process.wait(timeout=60)
        self.assertEqual((self.dir / "env.0").read_text(), "DSSR_SERVICE_PORT=\n")
        self.assertEqual(list((self.dir / ".jarvice").glob("job.42.app*")), [])

    def listening(self) -> socket.socket:
        """A socket of this test (not of the job) listening on a loopback port."""
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        return listener

    def test_the_app_s_url_template_is_recorded(self):
        template = self.dir / "url.txt"  # below the app's root, here the host's
        template.write_text("https://%PUBLICADDR%/vnc.html?password=%NIMBIXPASSWD%\r\nmore\n")
        _, record = self.app(AppPlan((free_port(),)), url_file=str(template))
        self.assertEqual(record.url_template,
                         "https://%PUBLICADDR%/vnc.html?password=%NIMBIXPASSWD%")

    def app(self, plan: AppPlan, **options):
        """An interactive job whose app listens on its port; the batch and the record."""
        app_record = self.dir / ".jarvice" / "job.42.app"
        # The app: tells its environment, then listens on the port it was given.
        filled = ('env | grep -e ^DSSR_ -e ^JARVICE_ > "$OUT/env.$PROCESS_PROCID"\n'
                  '[ "$PROCESS_PROCID" = 0 ] || exit 0\n'
                  'exec python3 -c "import socket, time, os; s = socket.socket(); '
                  's.bind((\\"127.0.0.1\\", int(os.environ[\\"DSSR_SERVICE_PORT\\"]))); '
                  's.listen(); time.sleep(60)"\n')
        process = self.start(filled, plan, **options)
        self.addCleanup(self.kill_group, process)
        deadline = time.monotonic() + 30
        while not app_record.exists():
            self.assertLess(time.monotonic(), deadline, "no app record")
            time.sleep(0.05)
        return process, parse_app_record(app_record.read_text())

    def kill_group(self, process):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
