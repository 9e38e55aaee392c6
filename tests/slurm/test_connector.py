"""The Slurm connector over a scripted ``IRemote`` answering with captured Slurm output.

Job ids, names and owners below are those of tests/fixtures/slurm/squeue_snapshot.out
(see README.rst there): 6 COMPLETED, 7 FAILED, 8 CANCELLED, 9 RUNNING (dssr-svc),
10 RUNNING (dssr-alice), 11 and 12 PENDING, 13 held, 14 cancelled while held, 15 not a
Jarvice job, 16 and 17 held with odd names.
"""

import base64
import json
import re

import jwt
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from dssr.compose import slurm_over
from dssr.errors import BadRequest, Forbidden, NotFound, NotYet, Unavailable
from dssr.executors.config import ExecutorSettings
from dssr.executors.singularity import prepare
from dssr.identity import IdentityMap, parse_mapping
from dssr.jobfiles import COLLECTED, LIST_DIRECTORY, TAIL
from dssr.jobfiles import TAIL_BYTES as OUTPUT_BYTES
from dssr.jobs import (
    AppAccess,
    DirEntry,
    ExitStatus,
    InteractiveApp,
    JobInfo,
    JobRef,
    ListedJob,
    RunStatus,
    SubmitRequest,
    app_ports,
)
from dssr.proxy.tokens import AccessTokens
from dssr.proxy.urls import JobsAddresses, parse_jobs_domain
from dssr.remote.interfaces import ConnectionLost, NotConnected, RemoteResult
from dssr.slurm.accounting import ACCOUNTING_RECHECK
from tests.executors.sample import APP_PASSWORD, OTHER_PASSWORD, OWNER_PASSWORD, template
from tests.slurm.fakes import SUBMIT, FakeRemote, captured, exited, fixture_text, ok

# -- captured runs (exit statuses as README.rst records them) ---------------------------

SQUEUE = captured("squeue_snapshot", 0)
SQUEUE_EMPTY = captured("squeue_snapshot_empty", 0)
SQUEUE_DOWN = captured("squeue_snapshot_down", 1)
SBATCH = captured("sbatch_parsable", 0)
PING_UP = captured("scontrol_ping_up", 0)
PING_DOWN = captured("scontrol_ping_down", 1)
SACCT_DISABLED = captured("sacct_job", 1)
SACCT_DBD_DOWN = captured("accounting/sacct_dbd_down", 1)
SCANCEL_DENIED = captured("scancel_permission_denied", 210)
SCANCEL_UNKNOWN = captured("scancel_unknown", 0)
RELEASE_HELD = captured("scontrol_release_held", 0)
SHOW_RUNNING = captured("scontrol_show_job_running", 0)
SHOW_UNKNOWN = captured("scontrol_show_job_unknown", 1)
HOSTNAMES = fixture_text("scontrol_show_hostnames").decode().split()

COMPLETED = JobRef("20261124140000-A1B2C-jarvice-ubuntu-kirby_s1", 1, "6")
FAILED = JobRef("20261124140100-D3E4F-jarvice-ubuntu-kirby_s1", 2, "7")
CANCELLED = JobRef("20261124140200-G5H6I-jarvice-ubuntu-kirby_s1", 3, "8")
RUNNING = JobRef("20261124140300-J7K8L-jarvice-ubuntu-kirby_s1", 4, "9")  # sbatch_parsable's
ALICE = JobRef("20261124140400-M9N0P-jarvice-ubuntu-alice.smith_s1", 5, "10")
HELD = JobRef("20261124140500-Q1R2S-jarvice-ubuntu-kirby_s1", 6, "13")
HELD_CANCELLED = JobRef("held_then_cancelled", 7, "14")
GONE = JobRef("20261124135900-Z9Y8X-jarvice-ubuntu-kirby_s1", 8, "5")  # purged by Slurm

SCRATCH = "/home/dssr-svc"
SETTINGS = ExecutorSettings(job_scratch_dir=SCRATCH, init_docker_password="init-pw-1234")
TTL = 2.0
# How old a cached snapshot is when a call that needs a fresh one comes. Never 0: a
# snapshot's age counts from the start of its squeue, which takes time on a real cluster
# but none on the Clock, and max_age=0 accepts a snapshot of age exactly 0.
AGE = 0.5
# A real end record, as slurm_batch's EXIT trap writes it.
END_RECORD_FAILED = b"JOBID=5\nSTATE=FAILED\nEXIT_CODE=1\nSTEP_EXIT_CODE=1\nSTART=100\nEND=130\n"
OUTPUT = b"DSSR: job 9 on 1 node(s): vm\nhello\nJARVICE Job completed OK\n"
NO_FILE = exited(1, b"tail: cannot open 'x' for reading: No such file or directory\n")


def files(ref: JobRef, scratch: str = SCRATCH) -> tuple[str, str, str]:
    """Output, end record and cancel marker of a job."""
    base = f"{scratch}/.jarvice/{ref.name}.{ref.jobid}"
    return base + ".out", base + ".end", base + ".cancelled"


def snapshot(*substitutions: tuple[bytes, bytes]) -> RemoteResult:
    """The captured snapshot with some of its lines edited (each pair replaces one line)."""
    text = SQUEUE.stdout
    for old, new in substitutions:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return RemoteResult(0, None, text, b"")


MAPPING = """
users_id_mapping:
  - user: alice
    jarvice_user: alice.smith
    mail: Alice@Example.org
    mapped_user: dssr-alice
    ssh_private_key_b64: {key}
  - user: bob
    jarvice_user: bob
    mail: bob@example.org
    mapped_user: dssr-bob
    ssh_private_key_b64: {key}
""".format(key=base64.b64encode(b"-----BEGIN OPENSSH PRIVATE KEY-----\nx\n").decode())


def bearer(email: str) -> str:
    """A JWT as upstream sends it; DSSR without a public key only decodes it."""
    return jwt.encode({"email": email, "sub": "x"}, "a-key-DSSR-never-sees-0123456789abcdef",
                      algorithm="HS256")


def payload(batch_script: bytes) -> str:
    """The filled script a batch script carries (base64 in DSSR_PAYLOAD_n)."""
    chunks = re.findall(r"^export DSSR_PAYLOAD_\d+=(\S*)$", batch_script.decode(), re.MULTILINE)
    return base64.b64decode("".join(chunks)).decode()


class ConnectorTestCase(SynchronousTestCase):
    identities = None

    def setUp(self):
        self.clock = Clock()
        self.remote = FakeRemote(squeue=[SQUEUE])
        self.connector = self.make()

    def make(self, **kwargs):
        kwargs.setdefault("identities", self.identities)
        kwargs.setdefault("snapshot_ttl", TTL)
        kwargs.setdefault("service_user", "dssr-svc")
        return slurm_over(self.remote, self.clock, SETTINGS, **kwargs)

    def call(self, method, *args):
        return ensureDeferred(getattr(self.connector, method)(*args))

    def result(self, method, *args):
        return self.successResultOf(self.call(method, *args))

    def error(self, kind, method, *args):
        return self.failureResultOf(self.call(method, *args), kind).value

    def submit_request(self, name=RUNNING.name, script=None, bearer="", held=False):
        return SubmitRequest(name, 4, 1, "singularity", script or template(), bearer, held)


class QueueTests(ConnectorTestCase):
    """/running, /queued, /runstatus: one shared squeue snapshot."""

    def test_running_and_queued(self):
        # Job 10 is dssr-alice's: without ID mapping, not DSSR's (Slurm filters by
        # user; the connector checks owners too). Job 17's name holds a newline.
        self.assertEqual(self.result("running"), [ListedJob(RUNNING.name, "9")])
        self.assertEqual(self.result("queued"), [
            ListedJob("pending.exclusive-1", "11"), ListedJob("pending_2", "12"),
            ListedJob("odd|name with spaces", "16"), ListedJob(HELD.name, "13")])
        [call] = self.remote.calls
        self.assertEqual(call.argv[:5], ("squeue", "--noheader", "--all", "--states=all",
                                         "--user=dssr-svc"))
        self.assertRegex(call.argv[5], r"^--format=[0-9a-f]{16}\|%i\|%T\|%M\|%N\|%u\|%r\|%j$")
        self.assertEqual((call.stdin, call.user), (None, None))

    def test_every_snapshot_has_its_own_token(self):
        self.result("running")
        self.clock.advance(TTL)
        self.result("running")
        formats = {call.argv[5] for call in self.remote.of("squeue")}
        self.assertEqual(len(formats), 2)

    def test_a_job_with_a_control_character_in_its_name_is_logged_once(self):
        with capturedLogs() as events:
            for _ in range(3):
                self.result("running")
                self.clock.advance(TTL)
        said = [formatEvent(event) for event in events if "control characters" in
                formatEvent(event)]
        self.assertEqual(len(said), 1)
        self.assertIn("17", said[0])

    def test_empty_cluster_is_empty_lists(self):
        self.remote.answer("squeue", SQUEUE_EMPTY)
        self.assertEqual(self.result("running"), [])
        self.assertEqual(self.result("queued"), [])

    def test_concurrent_callers_share_one_squeue(self):
        pending = Deferred()
        self.remote.answer("squeue", pending, SQUEUE)
        running = [self.call("running") for _ in range(20)]
        queued = [self.call("queued") for _ in range(20)]
        statuses = [self.call("runstatus", RUNNING) for _ in range(20)]
        self.assertEqual(self.remote.keys(), ["squeue"])
        for d in running + queued + statuses:
            self.assertNoResult(d)
        pending.callback(SQUEUE)
        self.assertEqual({tuple(self.successResultOf(d)) for d in running},
                         {(ListedJob(RUNNING.name, "9"),)})
        self.assertEqual({len(self.successResultOf(d)) for d in queued}, {4})
        self.assertEqual({self.successResultOf(d) for d in statuses},
                         {RunStatus(("vm",), "00:00:04")})
        self.assertEqual(self.remote.keys(), ["squeue"])

    def test_reused_within_ttl_then_fetched_again(self):
        self.result("running")
        self.clock.advance(TTL - 0.1)
        self.result("queued")
        self.result("runstatus", HELD)
        self.assertEqual(len(self.remote.of("squeue")), 1)
        self.clock.advance(0.2)
        self.remote.answer("squeue", SQUEUE_EMPTY)
        self.assertEqual(self.result("running"), [])
        self.assertEqual(len(self.remote.of("squeue")), 2)

    def test_runstatus_expands_nodes_and_normalises_elapsed(self):
        # Job 9 as the captured line, but on the four hosts of the captured
        # scontrol_show_hostnames run and two days in (the rig has one node, and its
        # jobs ran for seconds).
        self.remote.answer("squeue", snapshot(
            (b"9|RUNNING|0:04|vm|", b"9|RUNNING|2-03:04:05|node[1-3,7]|")))
        self.assertEqual(HOSTNAMES, ["node1", "node2", "node3", "node7"])
        self.assertEqual(self.result("runstatus", RUNNING),
                         RunStatus(tuple(HOSTNAMES), "51:04:05"))

    def test_runstatus_pending_job_has_no_nodes(self):
        self.assertEqual(self.result("runstatus", HELD), RunStatus((), "00:00:00"))

    def test_runstatus_unknown_job(self):
        self.assertIsNone(self.result("runstatus", GONE))
        # The right id under another name is another job.
        error = self.error(NotFound, "runstatus", JobRef(ALICE.name, 5, "9"))
        self.assertEqual(error.message, f"job 9 is not the Jarvice job {ALICE.name}")
        # dssr-alice's job, and without ID mapping DSSR acts for nobody but dssr-svc.
        self.error(NotFound, "runstatus", ALICE)
        self.assertEqual(len(self.remote.of("squeue")), 1)


class QueueFailureTests(ConnectorTestCase):
    """A queue that cannot be read is Unavailable, never an empty list."""

    def assert_unavailable_everywhere(self, word):
        for method, args in (("running", ()), ("queued", ()), ("runstatus", (RUNNING,))):
            error = self.error(Unavailable, method, *args)
            self.assertIn(word, error.message)

    def test_controller_down(self):
        self.remote.answer("squeue", SQUEUE_DOWN)
        self.assert_unavailable_everywhere("Unable to contact slurm controller")

    def test_transport_failure(self):
        self.remote.answer("squeue", ConnectionLost("channel closed"))
        self.assert_unavailable_everywhere("channel closed")
        self.remote.answer("squeue", NotConnected("no route to host"))
        self.assert_unavailable_everywhere("no route to host")

    def test_output_not_understood(self):
        # squeue's own error line, printed on stdout with exit 0.
        self.remote.answer("squeue", RemoteResult(0, None, SQUEUE_DOWN.stderr, b""))
        self.assert_unavailable_everywhere("not understood")

    def test_failure_is_not_cached(self):
        self.remote.answer("squeue", SQUEUE_DOWN, SQUEUE)
        self.error(Unavailable, "running")
        self.assertEqual(len(self.result("running")), 1)
        self.assertEqual(len(self.remote.of("squeue")), 2)

    def test_exitstatus_does_not_guess_when_the_queue_fails(self):
        self.remote.answer("squeue", SQUEUE_DOWN)
        self.error(Unavailable, "exitstatus", COMPLETED)
        self.assertEqual(self.remote.keys(), ["squeue"])


class HealthTests(ConnectorTestCase):
    def test_gc_up(self):
        self.remote.answer("scontrol ping", PING_UP)
        self.remote.answer("prune", ok())
        self.assertIsNone(self.result("gc"))
        self.assertEqual(self.remote.calls[0].argv, ("scontrol", "ping"))

    def test_gc_prunes_collected_files_at_most_once_a_minute(self):
        self.remote.answer("scontrol ping", PING_UP)
        self.remote.answer("prune", ok())
        self.connector = self.make(identities=IdentityMap(parse_mapping(MAPPING)),
                                   output_retention=2 * 86400 + 1)
        self.result("gc")
        self.assertEqual(sorted((call.user or "", call.argv[4:]) for call in
                                self.remote.of("prune")),
                         [(user, (f"{SCRATCH}/.jarvice", "2881", "100"))
                          for user in ("", "dssr-alice", "dssr-bob")])
        self.clock.advance(59)
        self.result("gc")
        self.assertEqual(len(self.remote.of("prune")), 3)
        self.clock.advance(1)
        self.result("gc")
        self.assertEqual(len(self.remote.of("prune")), 6)

    def test_a_failed_prune_is_logged_not_a_failed_gc(self):
        self.remote.answer("scontrol ping", PING_UP)
        self.remote.answer("prune", exited(1, b"find: permission denied\n"))
        with capturedLogs() as events:
            self.assertIsNone(self.result("gc"))
        self.assertIn("find: permission denied", "".join(formatEvent(e) for e in events))

    def test_gc_controller_down(self):
        self.remote.answer("scontrol ping", PING_DOWN)
        self.assertIn("Slurmctld(primary) at vm is DOWN", self.error(Unavailable, "gc").message)

    def test_gc_backup_controller_up(self):
        # scontrol ping exits 0 when any controller answers; the captured DOWN line for
        # the primary, plus a backup line in the same format.
        self.remote.answer("scontrol ping", RemoteResult(
            0, None, PING_DOWN.stdout + b"Slurmctld(backup) at vm2 is UP\n", b""))
        self.assertIsNone(self.result("gc"))

    def test_gc_transport_failure(self):
        self.remote.answer("scontrol ping", ConnectionLost("connection reset"))
        self.assertIn("connection reset", self.error(Unavailable, "gc").message)

    def test_ready_when_connected_and_controller_up(self):
        self.remote.answer("scontrol ping", PING_UP)
        self.assertIsNone(self.result("ready"))
        self.remote.answer("scontrol ping", PING_DOWN)
        self.error(Unavailable, "ready")

    def test_ready_names_the_transport_state(self):
        self.remote.connection = ("connecting", None)
        self.assertEqual(self.error(Unavailable, "ready").message, "SSH connecting")
        self.remote.connection = ("failed", "host key for login1 has changed")
        self.assertEqual(self.error(Unavailable, "ready").message,
                         "SSH failed: host key for login1 has changed")
        self.assertEqual(self.remote.calls, [])

    def test_a_plain_remote_is_no_service(self):
        self.assertIsNone(self.connector.service)


class SubmitTests(ConnectorTestCase):
    def setUp(self):
        super().setUp()
        self.remote.answer("squeue", SQUEUE_EMPTY)
        self.remote.answer("submit", SBATCH)

    def test_submit(self):
        submitted = self.result("submit", self.submit_request())
        self.assertEqual(submitted.jobid, "9")
        # One round trip, no squeue: the claim on the cluster decides.
        self.assertEqual(self.remote.keys(), ["submit"])
        call = self.remote.of("submit")[0]
        self.assertEqual(call.argv, (
            "sh", "-c", SUBMIT, "sh", f"{SCRATCH}/.jarvice",
            f"{SCRATCH}/.jarvice/{RUNNING.name}.claim", "120", "20",
            "sbatch", "--parsable", "-J", f"jarvice_{RUNNING.name}",
            "-o", f"{SCRATCH}/.jarvice/{RUNNING.name}.%j.out",
            "-n", "4", "-N", "1", "--exclusive"))
        self.assertIsNone(call.user)
        job = prepare(template(), RUNNING.name, 1, False, SETTINGS)
        self.assertEqual(call.stdin, job.batch.script.encode())
        self.assertTrue(call.stdin.startswith(b"#!/bin/bash\n"))
        self.assertEqual(submitted.fscript, job.fscript)
        self.assertIn("JOBOBJ_USER=kirby\n", submitted.fscript)

    def test_held_submit(self):
        self.result("submit", self.submit_request(held=True))
        self.assertEqual(self.remote.of("submit")[0].argv[-1], "-H")

    def test_fscript_carries_no_credential(self):
        docker_secret = json.dumps({"server": "us-docker.pkg.dev", "username": "owner",
                                    "password": OWNER_PASSWORD})
        script = template(JOBOBJ_DOCKER_SECRET=docker_secret)
        ctrsecret = re.search(r"^JOBOBJ_CTRSECRET=(.*)$", script, re.MULTILINE)[1]
        submitted = self.result("submit", self.submit_request(script=script))
        filled = payload(self.remote.of("submit")[0].stdin)
        # The job itself gets its registry login...
        self.assertIn(base64.b64encode(OWNER_PASSWORD.encode()).decode(), filled)
        self.assertIn(ctrsecret, filled)
        # ... upstream's copy none of it.
        for secret in (ctrsecret, docker_secret, OWNER_PASSWORD, APP_PASSWORD, OTHER_PASSWORD,
                       "init-pw-1234"):
            for form in (secret, base64.b64encode(secret.encode()).decode()):
                self.assertNotIn(form, submitted.fscript)
        self.assertNotIn("JOBOBJ_CTRSECRET", submitted.fscript)
        self.assertNotIn("JOBOBJ_DOCKER_SECRET", submitted.fscript)
        self.assertIn("JOBOBJ_REPO=us-docker.pkg.dev/jarvice/images/ubuntu:24.04\n",
                      submitted.fscript)

    def test_request_data_is_never_shell_text(self):
        self.result("submit", self.submit_request())
        argv = self.remote.of("submit")[0].argv
        self.assertEqual(argv[:3], ("sh", "-c", SUBMIT))
        self.assertNotIn(RUNNING.name, argv[2])
        self.assertEqual(argv[8:12], ("sbatch", "--parsable", "-J", f"jarvice_{RUNNING.name}"))

    def test_snapshot_dropped_after_submit(self):
        self.result("submit", self.submit_request())
        self.remote.answer("squeue", SQUEUE)
        # Within the TTL of the submit's own (empty) snapshot, yet asked again.
        self.assertEqual(self.result("running"), [ListedJob(RUNNING.name, "9")])
        self.assertEqual(self.remote.keys(), ["submit", "squeue"])

    def test_a_claimed_name_answers_with_its_job(self):
        # The claim program prints the job id the claim holds, as sbatch would.
        self.remote.answer("submit", ok(b"13\n"))
        self.assertEqual(self.result("submit", self.submit_request(HELD.name)).jobid, "13")

    def test_a_busy_claim_is_unavailable(self):
        self.remote.answer("submit", exited(75, b"another submit of this job name is in "
                                                b"progress; try again\n"))
        error = self.error(Unavailable, "submit", self.submit_request())
        self.assertIn("in progress", error.message)

    def test_concurrent_submits_of_one_name_run_one_at_a_time(self):
        sbatch = Deferred()
        self.remote.answer("submit", sbatch, SBATCH)
        first = self.call("submit", self.submit_request())
        second = self.call("submit", self.submit_request())
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(self.remote.keys(), ["submit"])
        sbatch.callback(SBATCH)
        self.assertEqual(self.successResultOf(first).jobid, "9")
        self.assertEqual(self.successResultOf(second).jobid, "9")
        self.assertEqual(self.remote.keys(), ["submit", "submit"])

    def test_concurrent_submits_of_two_names_both_run(self):
        sbatch = Deferred()
        self.remote.answer("submit", sbatch, RemoteResult(0, None, b"10\n", b""))
        first = self.call("submit", self.submit_request(RUNNING.name))
        second = self.call("submit", self.submit_request(ALICE.name))
        self.assertEqual(self.successResultOf(second).jobid, "10")
        sbatch.callback(SBATCH)
        self.assertEqual(self.successResultOf(first).jobid, "9")
        self.assertEqual([call.argv[11] for call in self.remote.of("submit")],
                         [f"jarvice_{RUNNING.name}", f"jarvice_{ALICE.name}"])

    def test_sbatch_controller_down(self):
        # No captured sbatch failure: sbatch's prefix on the captured squeue error.
        stderr = SQUEUE_DOWN.stderr.replace(
            b"slurm_load_jobs error:", b"sbatch: error: Batch job submission failed:")
        self.remote.answer("submit", exited(1, stderr))
        error = self.error(Unavailable, "submit", self.submit_request())
        self.assertIn("Unable to contact slurm controller", error.message)

    def test_sbatch_refuses_the_job(self):
        self.remote.answer("submit", exited(1, b"sbatch: error: invalid partition specified: "
                                               b"gpu\nsbatch: error: Batch job submission "
                                               b"failed: Invalid partition name specified\n"))
        error = self.error(BadRequest, "submit", self.submit_request())
        self.assertEqual(error.field, "hpc_script")
        self.assertIn("invalid partition specified: gpu", error.message)

    def test_sbatch_prints_no_job_id(self):
        self.remote.answer("submit", ok(b"Submitted batch job 9\n"))
        self.error(Unavailable, "submit", self.submit_request())

    def test_sbatch_transport_failure(self):
        self.remote.answer("submit", ConnectionLost("connection reset"))
        self.assertIn("connection reset",
                      self.error(Unavailable, "submit", self.submit_request()).message)

    def test_a_bearer_without_id_mapping_is_warned_about_once(self):
        with capturedLogs() as events:
            for name in (RUNNING.name, ALICE.name):
                self.result("submit", self.submit_request(name, bearer=bearer("a@b.org")))
        warnings = [formatEvent(event) for event in events
                    if event["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("no ID mapping is configured", warnings[0])
        self.assertNotIn(bearer("a@b.org"), warnings[0])
        self.assertEqual({call.user for call in self.remote.of("submit")}, {None})

    def test_a_bad_script_runs_nothing(self):
        error = self.error(BadRequest, "submit",
                           self.submit_request(script=template(JOBOBJ_APPDEFVERSION="1")))
        self.assertEqual(error.field, "hpc_script")
        self.assertEqual(self.remote.calls, [])


class ExitStatusTests(ConnectorTestCase):
    def setUp(self):
        super().setUp()
        self.remote.answer("tail", ok(OUTPUT))
        self.remote.answer("cat", NO_FILE)
        self.remote.answer("test", exited(1))
        self.remote.answer("collected", ok())
        self.remote.answer("sacct", SACCT_DISABLED)

    def assert_collected(self, ref, user=None):
        output, end_record, marker = files(ref)
        calls = [call for call in self.remote.calls if call.key not in ("squeue", "sacct")]
        self.assertEqual([(call.argv, call.user) for call in calls[-4:]], [
            (("sh", "-c", TAIL, "sh", "10000", output, str(OUTPUT_BYTES)), user),
            (("cat", "--", end_record), user),
            (("test", "-e", marker), user),
            (("sh", "-c", COLLECTED, "sh", output.removesuffix(".out"),
              f"{SCRATCH}/.jarvice/{ref.name}.claim", ref.jobid), user),
        ])

    def test_completed_in_the_queue(self):
        self.assertEqual(self.result("exitstatus", COMPLETED),
                         ExitStatus(0, "00:00:00", "COMPLETED", OUTPUT.decode()))
        self.assert_collected(COMPLETED)
        self.assertEqual(self.remote.of("sacct"), [])

    def test_failed_in_the_queue(self):
        self.assertEqual(self.result("exitstatus", FAILED),
                         ExitStatus(1, "00:00:00", "FAILED", OUTPUT.decode()))
        self.assert_collected(FAILED)

    def test_cancelled_in_the_queue(self):
        self.assertEqual(self.result("exitstatus", CANCELLED),
                         ExitStatus(-15, "00:00:00", "CANCELLED", OUTPUT.decode()))
        self.assert_collected(CANCELLED)

    def test_cancelled_while_pending_has_no_output(self):
        self.remote.answer("tail", NO_FILE)
        self.assertEqual(self.result("exitstatus", HELD_CANCELLED),
                         ExitStatus(-15, "00:00:00", "CANCELLED", ""))
        self.assertEqual(len(self.remote.of("collected")), 1)

    def test_queue_is_read_fresh(self):
        self.remote.answer("squeue", SQUEUE_EMPTY, SQUEUE)
        self.result("running")
        self.clock.advance(AGE)
        self.assertEqual(self.result("exitstatus", COMPLETED).rc, 0)
        self.assertEqual(len(self.remote.of("squeue")), 2)

    def test_live_job_is_not_collected_but_asked_again(self):
        # Upstream meets a job starting between its /running and /queued snapshots:
        # "ask again" (503, Retry-After), never -9, which it would record as the end.
        for ref in (RUNNING, HELD):
            self.clock.advance(AGE)
            error = self.error(NotYet, "exitstatus", ref)
            self.assertIn(f"job {ref.jobid} is", error.message)
            self.assertEqual((error.status, error.headers()), (503, {"Retry-After": "5"}))
        self.assertEqual(self.remote.keys(), ["squeue", "squeue"])

    def test_a_purged_id_accounting_gives_another_name_is_the_wrong_job(self):
        self.remote.answer("tail", NO_FILE)
        self.remote.answer("sacct", ok(b"5|COMPLETED|0:0|00:00:09|jarvice_someone-else\n"))
        error = self.error(NotFound, "exitstatus", GONE)
        self.assertEqual(error.field, "jobid")
        self.assertIn("accounting has it as jarvice_someone-else", error.message)
        self.assertEqual(self.remote.of("collected"), [])

    def test_end_record_when_accounting_is_disabled(self):
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        self.assertEqual(self.result("exitstatus", GONE),
                         ExitStatus(1, "00:00:30", "FAILED", OUTPUT.decode()))
        [sacct] = self.remote.of("sacct")
        # Only DSSR's accounts' jobs: a stranger's job of that id is not this one.
        self.assertEqual(sacct.argv, ("sacct", "--noheader", "--parsable2",
                                      "--user=dssr-svc", "--jobs=5",
                                      "--format=JobID,State,ExitCode,Elapsed,JobName"))
        self.assert_collected(GONE)
        # Accounting stays off: the next job goes straight to its end record.
        self.remote.answer("cat", ok(END_RECORD_FAILED.replace(b"FAILED", b"COMPLETED")
                                     .replace(b"JOBID=5", b"JOBID=4")
                                     .replace(b"EXIT_CODE=1", b"EXIT_CODE=0")
                                     .replace(b"END=130", b"END=3800")))
        other = JobRef("20261124135800-W7V6U-jarvice-ubuntu-kirby_s1", 9, "4")
        self.assertEqual(self.result("exitstatus", other),
                         ExitStatus(0, "01:01:40", "COMPLETED", OUTPUT.decode()))
        self.assertEqual(len(self.remote.of("sacct")), 1)
        # Until ACCOUNTING_RECHECK has passed: then sacct is asked again (a site may have
        # turned accounting on).
        self.clock.advance(ACCOUNTING_RECHECK)
        self.remote.answer("sacct", ok(f"5|CANCELLED by 1001|0:15|00:07:01|jarvice_{GONE.name}\n"
                                       .encode()))
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        self.assertEqual(self.result("exitstatus", GONE).rc, -15)
        self.assertEqual(len(self.remote.of("sacct")), 2)

    def test_accounting_record_wins_over_end_record(self):
        self.remote.answer("sacct", ok(f"5|CANCELLED by 1001|0:15|00:07:01|jarvice_{GONE.name}\n"
                                       .encode()))
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        self.assertEqual(self.result("exitstatus", GONE),
                         ExitStatus(-15, "00:07:01", "CANCELLED", OUTPUT.decode()))
        self.assertEqual(len(self.remote.of("sacct")), 1)

    def test_every_end_accounting_reports(self):
        """Captured sacct records (two written by hand, see their README) give the rc of
        docs/protocol.rst's table, whatever the end record says."""
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        for stem, rc, elapsed in [
            ("completed", 0, "00:00:00"), ("failed", 1, "00:00:00"),
            ("cancelled", -15, "00:00:01"), ("timeout", -9, "00:01:24"),
            ("out_of_memory", 1, "00:00:00"), ("node_fail", 1, "00:00:03"),
            ("preempted", -15, "00:04:10"),
        ]:
            text = fixture_text(f"accounting/sacct_{stem}")
            name = text.decode().splitlines()[0].split("|", 4)[4].removeprefix("jarvice_")
            ref = JobRef(name, 1, "5")
            self.remote.answer("sacct", ok(text))
            status = self.result("exitstatus", ref)
            self.assertEqual((status.rc, status.state, status.totaltime),
                             (rc, stem.upper(), elapsed), stem)

    def test_slurmdbd_down_leaves_the_end_record_and_a_warning(self):
        self.remote.answer("sacct", SACCT_DBD_DOWN)
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        with capturedLogs() as events:
            self.assertEqual(self.result("exitstatus", GONE),
                             ExitStatus(1, "00:00:30", "FAILED", OUTPUT.decode()))
        [warning] = [formatEvent(event) for event in events
                     if event["log_level"] == LogLevel.warn and "sacct" in formatEvent(event)]
        self.assertIn("sacct failed for job 5 (exit 1): sacct: error: ", warning)
        self.assertIn("end record decides", warning)
        # Accounting is down, not off: the next job asks again.
        self.result("exitstatus", GONE)
        self.assertEqual(len(self.remote.of("sacct")), 2)

    def test_accounting_record_of_another_job_is_not_used(self):
        # Job ids come round again; accounting keeps the older job of the same id.
        self.remote.answer("sacct", ok(b"5|COMPLETED|0:0|00:00:01|jarvice_someone-else\n"))
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        with capturedLogs() as events:
            self.assertEqual(self.result("exitstatus", GONE).state, "FAILED")
        [warning] = [formatEvent(event) for event in events
                     if event["log_level"] == LogLevel.warn and "sacct" in formatEvent(event)]
        self.assertIn("'jarvice_someone-else'", warning)

    def test_live_in_accounting_but_not_in_the_queue_is_never_ended(self):
        # PrivateData=jobs hides the job from the service account's squeue.
        self.remote.answer("sacct", ok(f"5|RUNNING|0:0|00:01:00|jarvice_{GONE.name}\n".encode()))
        error = self.error(Unavailable, "exitstatus", GONE)
        self.assertIn("RUNNING in Slurm's accounting", error.message)
        self.assertIn("sacctmgr add coordinator account=ACCOUNT names=dssr-svc", error.message)
        self.assertEqual(self.remote.of("forget"), [])
        # Its end record, once written, says it ended.
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        self.assertEqual(self.result("exitstatus", GONE).state, "FAILED")

    def test_cancel_marker_without_end_record(self):
        self.remote.answer("test", ok())
        self.assertEqual(self.result("exitstatus", GONE),
                         ExitStatus(-15, "00:00:00", "CANCELLED", OUTPUT.decode()))
        self.assert_collected(GONE)

    def test_garbled_end_record_and_no_marker(self):
        self.remote.answer("cat", ok(b"STATE=FAILED\nEXIT_CODE=1\n"))
        self.assertEqual(self.result("exitstatus", GONE),
                         ExitStatus(-9, "00:00:00", "UNKNOWN", OUTPUT.decode()))

    def test_nothing_at_all(self):
        self.remote.answer("tail", NO_FILE)
        status = self.result("exitstatus", GONE)
        self.assertEqual(status, ExitStatus(-9, "00:00:00", None, ""))
        # No file of that id and name, and accounting (of DSSR's accounts only) has no
        # such job: nothing is marked.
        self.assertEqual(self.remote.keys(), ["squeue", "tail", "cat", "test", "sacct"])

    def test_repeated_calls_answer_the_same_and_delete_nothing(self):
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        answers = {self.result("exitstatus", GONE) for _ in range(3)}
        self.assertEqual(answers, {ExitStatus(1, "00:00:30", "FAILED", OUTPUT.decode())})
        self.assertEqual(len(self.remote.of("collected")), 3)
        self.assertEqual(set(self.remote.keys()),
                         {"squeue", "tail", "cat", "test", "sacct", "collected"})

    def test_another_id_of_a_live_name_reads_only_its_own_files(self):
        # Job 9 runs as RUNNING.name; id 999 has no file of that name: unknown, and
        # job 9's files are neither read nor marked.
        self.remote.answer("tail", NO_FILE)
        self.assertEqual(self.result("exitstatus", JobRef(RUNNING.name, 4, "999")).rc, -9)
        read = [call.argv for call in self.remote.calls if call.key not in ("squeue", "sacct")]
        self.assertTrue(read)
        self.assertTrue(all(f"{RUNNING.name}.999." in argv[-1] or f"{RUNNING.name}.999."
                            in " ".join(argv) for argv in read), read)
        self.assertEqual(self.remote.of("collected"), [])

    def test_transport_failure_while_collecting(self):
        self.remote.answer("cat", ConnectionLost("gone"))
        self.assertIn("gone", self.error(Unavailable, "exitstatus", GONE).message)
        self.assertEqual(self.remote.of("collected"), [])


class ActionTests(ConnectorTestCase):
    def setUp(self):
        super().setUp()
        self.remote.answer("touch", ok())
        self.remote.answer("scancel", SCANCEL_UNKNOWN)  # exit 0, no output

    def test_terminate(self):
        self.assertIsNone(self.result("terminate", RUNNING))
        self.assertEqual([(call.key, call.user) for call in self.remote.calls],
                         [("squeue", None), ("touch", None), ("scancel", None)])
        self.assertEqual([call.argv for call in self.remote.calls[1:]], [
            ("touch", "--", files(RUNNING)[2]),
            ("scancel", "9"),
        ])

    def test_terminate_drops_the_snapshot(self):
        self.result("terminate", HELD)
        self.remote.answer("squeue", snapshot((b"13|PENDING|0:00||dssr-svc|JobHeldUser|",
                                               b"13|CANCELLED|0:00||dssr-svc|JobHeldUser|")))
        self.assertNotIn(ListedJob(HELD.name, "13"), self.result("queued"))
        self.assertEqual(self.remote.keys(), ["squeue", "touch", "scancel", "squeue"])

    def test_terminate_reads_the_queue_fresh(self):
        self.remote.answer("squeue", SQUEUE_EMPTY, SQUEUE)
        self.result("running")
        self.clock.advance(AGE)
        self.result("terminate", RUNNING)
        self.assertEqual(self.remote.keys(), ["squeue", "squeue", "touch", "scancel"])

    def test_terminate_permission_denied(self):
        # The captured scancel_permission_denied run (the service account cancelling
        # dssr-alice's job 10).
        self.remote.answer("scancel", SCANCEL_DENIED)
        error = self.error(Forbidden, "terminate", RUNNING)
        self.assertIn("Access/permission denied", error.message)
        self.assertEqual(self.remote.of("scancel")[0].argv, ("scancel", "9"))

    def test_jobs_that_are_not_dssrs_are_refused_untouched(self):
        # Job 10 is dssr-alice's, a user DSSR does not act for without ID mapping; job
        # 9 is not named ALICE.name.
        for method in ("terminate", "release", "events", "request_tail", "exitstatus"):
            for ref in (ALICE, JobRef(ALICE.name, 5, "9")):
                args = (ref, 10) if method == "request_tail" else (ref,)
                self.clock.advance(AGE)
                self.assertIn(f"job {ref.jobid} is not the Jarvice job",
                              self.error(NotFound, method, *args).message)
        self.assertEqual(set(self.remote.keys()), {"squeue"})

    def test_terminate_job_not_in_queue(self):
        self.assertIsNone(self.result("terminate", GONE))
        self.assertEqual(self.remote.keys(), ["squeue"])

    def test_terminate_ended_job(self):
        self.assertIsNone(self.result("terminate", COMPLETED))
        self.assertEqual(self.remote.keys(), ["squeue"])

    def test_terminate_controller_down(self):
        # scancel reaches slurmctld as squeue does; its captured error text.
        self.remote.answer("scancel", exited(1, SQUEUE_DOWN.stderr))
        self.error(Unavailable, "terminate", RUNNING)

    def test_release(self):
        self.remote.answer("scontrol release", RELEASE_HELD)
        self.assertIsNone(self.result("release", HELD))
        [call] = self.remote.of("scontrol release")
        self.assertEqual((call.argv, call.user), (("scontrol", "release", "13"), None))
        self.remote.answer("squeue", SQUEUE_EMPTY)
        self.result("queued")
        self.assertEqual(len(self.remote.of("squeue")), 2)

    def test_release_while_slurm_asks_to_try_again_is_503(self):
        # scontrol's answer right after slurmctld restarted with accounting on the rig
        # (a clean-clone CI run): a refusal of the moment, not a permission.
        self.remote.answer("scontrol release", exited(1, (
            b"Job update not available right now, the DB index is being set, try again "
            b"in a bit for job 13\n")))
        error = self.error(Unavailable, "release", HELD)
        self.assertIn("try again later", error.message)

    def test_release_unknown_job(self):
        error = self.error(NotFound, "release", GONE)
        self.assertIn("5", error.message)
        self.assertEqual(self.remote.keys(), ["squeue"])

    def test_events(self):
        self.remote.answer("scontrol show", SHOW_RUNNING)
        text = self.result("events", RUNNING)
        self.assertEqual(text, SHOW_RUNNING.stdout.decode())
        self.assertTrue(text.startswith(f"JobId=9 JobName=jarvice_{RUNNING.name}\n"))
        self.assertEqual(self.remote.calls[-1].argv, ("scontrol", "show", "job", "9"))

    def test_events_unknown_job(self):
        self.assertIn("no job 5", self.error(NotFound, "events", GONE).message)
        self.assertEqual(self.remote.keys(), ["squeue"])

    def test_events_controller_down(self):
        self.remote.answer("scontrol show", exited(1, SQUEUE_DOWN.stderr))
        self.error(Unavailable, "events", RUNNING)

    def test_tail(self):
        self.remote.answer("tail", ok(b"line 99\nline 100\n"))
        self.assertEqual(self.result("request_tail", RUNNING, 2), "line 99\nline 100\n")
        [call] = self.remote.of("tail")
        self.assertEqual((call.argv, call.user),
                         (("sh", "-c", TAIL, "sh", "2", files(RUNNING)[0], str(OUTPUT_BYTES)),
                          None))

    def test_tail_without_output(self):
        self.remote.answer("tail", NO_FILE)
        self.assertIsNone(self.result("request_tail", RUNNING, 100))


class ListingTests(ConnectorTestCase):
    ROOT = "/data/shared"

    def setUp(self):
        super().setUp()
        self.connector = self.make(listing_root=self.ROOT)

    def test_no_root_configured(self):
        self.connector = self.make()
        error = self.error(Forbidden, "request_pvcls", "/", False)
        self.assertEqual(error.field, "qs.path")
        self.assertEqual(self.remote.calls, [])

    def test_listing(self):
        self.remote.answer("list", ok(b"1732533000.1234567890\t4096\td\tresults\0"
                                      b"1732533001.5000000000\t12\tf\tnotes with\ttab.txt\0"
                                      b"1732533002.0000000000\t7\tl\ta link\0"))
        entries = self.result("request_pvcls", "/proj/x", True)
        self.assertEqual(entries, [
            DirEntry("proj/x/a link", False, 1732533002, 7),
            DirEntry("proj/x/notes with\ttab.txt", False, 1732533001, 12),
            DirEntry("proj/x/results", True, 1732533000, 4096),
        ])
        [call] = self.remote.calls
        self.assertEqual((call.argv, call.user),
                         (("sh", "-c", LIST_DIRECTORY, "sh", self.ROOT, "proj/x"), None))

    def test_listing_the_root(self):
        self.remote.answer("list", ok(b"1732533000.0\t4096\td\tproj\0"))
        self.assertEqual(self.result("request_pvcls", "/", False),
                         [DirEntry("proj", True, 1732533000, 4096)])
        self.assertEqual(self.remote.calls[0].argv[-1], ".")

    def test_empty_directory(self):
        self.remote.answer("list", ok())
        self.assertEqual(self.result("request_pvcls", "/proj", False), [])

    def test_outside_the_root(self):
        self.remote.answer("list", exited(5))
        self.assertEqual(self.error(Forbidden, "request_pvcls", "/proj/l", False).field,
                         "qs.path")

    def test_missing_directory(self):
        self.remote.answer("list", exited(4, b"realpath: /data/shared/nope: No such file\n"))
        self.assertEqual(self.error(NotFound, "request_pvcls", "/nope", False).field, "qs.path")

    def test_other_failure(self):
        self.remote.answer("list", exited(1, b"find: '.': Permission denied\n"))
        self.assertIn("Permission denied",
                      self.error(Unavailable, "request_pvcls", "/proj", False).message)


class IdentityTests(ConnectorTestCase):
    """ID mapping: the bearer's e-mail picks the cluster user that acts."""

    identities = IdentityMap(parse_mapping(MAPPING))

    def setUp(self):
        super().setUp()
        self.remote.answer("touch", ok())
        self.remote.answer("scancel", SCANCEL_UNKNOWN)

    def test_submit_as_the_mapped_user(self):
        self.remote.answer("squeue", SQUEUE_EMPTY)
        self.remote.answer("submit", SBATCH)
        token = bearer("alice@example.org")
        script = template(body="{DOWNSTREAM_PARAMETERS}\necho " + token + "\n")
        submitted = self.result("submit", self.submit_request(script=script, bearer=token))
        self.assertEqual(submitted.jobid, "9")
        self.assertEqual([(call.key, call.user) for call in self.remote.calls],
                         [("submit", "dssr-alice")])
        # The job gets its script; upstream's copy has the token removed.
        self.assertIn(token, payload(self.remote.calls[0].stdin))
        self.assertNotIn(token, submitted.fscript)

    def test_email_is_case_insensitive(self):
        self.remote.answer("squeue", SQUEUE_EMPTY)
        self.remote.answer("submit", SBATCH)
        self.result("submit", self.submit_request(bearer=bearer("BOB@example.org")))
        self.assertEqual(self.remote.of("submit")[0].user, "dssr-bob")

    def test_unmapped_user_runs_nothing(self):
        error = self.error(Forbidden, "submit",
                           self.submit_request(bearer=bearer("mallory@example.org")))
        self.assertEqual(error.field, "bearer")
        self.assertEqual(self.remote.calls, [])

    def test_bad_bearer_runs_nothing(self):
        self.assertEqual(self.error(BadRequest, "submit",
                                    self.submit_request(bearer="not a token")).field, "bearer")
        self.assertEqual(self.remote.calls, [])

    def test_terminate_as_the_owner(self):
        self.assertIsNone(self.result("terminate", ALICE))
        self.assertEqual([(call.argv, call.user) for call in self.remote.calls[1:]], [
            (("touch", "--", files(ALICE)[2]), "dssr-alice"),
            (("scancel", "10"), "dssr-alice"),
        ])

    def test_service_accounts_job_runs_as_the_service_account(self):
        self.assertIsNone(self.result("terminate", RUNNING))
        self.assertEqual([call.user for call in self.remote.calls], [None, None, None])

    def test_release_as_the_owner(self):
        # Job 10 as captured, but held.
        self.remote.answer("squeue", snapshot((b"10|RUNNING|0:04|vm|dssr-alice|None|",
                                               b"10|PENDING|0:00||dssr-alice|JobHeldUser|")))
        self.remote.answer("scontrol release", RELEASE_HELD)
        self.result("release", ALICE)
        self.assertEqual(self.remote.of("scontrol release")[0].user, "dssr-alice")

    def test_tail_as_the_owner(self):
        self.remote.answer("tail", ok(b"hi\n"))
        self.assertEqual(self.result("request_tail", ALICE, 100), "hi\n")
        self.assertEqual(self.remote.of("tail")[0].user, "dssr-alice")

    def test_exitstatus_as_the_owner_in_the_queue(self):
        # Job 10 as captured, but ended.
        self.remote.answer("squeue", snapshot((b"10|RUNNING|0:04|", b"10|COMPLETED|0:09|")))
        self.remote.answer("tail", ok(OUTPUT))
        self.remote.answer("cat", NO_FILE)
        self.remote.answer("test", exited(1))
        self.remote.answer("collected", ok())
        self.assertEqual(self.result("exitstatus", ALICE),
                         ExitStatus(0, "00:00:09", "COMPLETED", OUTPUT.decode()))
        self.assertEqual({call.user for call in self.remote.calls[1:]}, {"dssr-alice"})
        self.assertEqual(self.remote.keys(), ["squeue", "tail", "cat", "test", "collected"])

    def test_exitstatus_finds_the_owner_after_slurm_forgot(self):
        output, end_record, marker = files(GONE)

        def test(call):
            if call.argv == ("test", "-e", end_record, "-o", "-e", output, "-o", "-e", marker):
                return ok() if call.user == "dssr-bob" else exited(1)
            self.assertEqual(call.argv, ("test", "-e", marker))
            return exited(1)

        self.remote.answer("test", test)
        self.remote.answer("sacct", SACCT_DISABLED)
        self.remote.answer("tail", ok(OUTPUT))
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        self.remote.answer("collected", ok())
        self.assertEqual(self.result("exitstatus", GONE),
                         ExitStatus(1, "00:00:30", "FAILED", OUTPUT.decode()))
        self.assertEqual(sorted((call.user or "") for call in self.remote.of("test")
                                if "-o" in call.argv), ["", "dssr-alice", "dssr-bob"])
        self.assertEqual({call.key: call.user for call in self.remote.calls
                          if call.key in ("tail", "cat", "collected")},
                         {"tail": "dssr-bob", "cat": "dssr-bob", "collected": "dssr-bob"})
        # Accounting is asked by the owner, who sees its own jobs whatever PrivateData hides.
        self.assertEqual(self.remote.of("sacct")[0].user, "dssr-bob")

    def test_exitstatus_of_a_job_the_service_account_cannot_see(self):
        # PrivateData=jobs without coordinator rights: Alice's job 10 is missing from the
        # service account's squeue, not from hers.
        [line] = [line for line in SQUEUE.stdout.split(b"\n") if line.startswith(b"10|")]
        hidden = snapshot((line + b"\n", b""))
        mine = snapshot()
        self.remote.answer("squeue", lambda call: mine if call.user == "dssr-alice" else hidden)
        self.remote.answer("test", lambda call: ok() if call.user == "dssr-alice" else exited(1))
        self.remote.answer("tail", ok(OUTPUT))
        self.remote.answer("cat", NO_FILE)
        self.remote.answer("collected", ok())
        error = self.error(Unavailable, "exitstatus", ALICE)
        self.assertIn("job 10 is RUNNING for dssr-alice but the service account dssr-svc "
                      "does not see it", error.message)
        self.assertIn("sacctmgr add coordinator account=ACCOUNT names=dssr-svc", error.message)
        [asked] = [call for call in self.remote.of("squeue") if call.user == "dssr-alice"]
        self.assertEqual(asked.argv[:4], ("squeue", "--noheader", "--states=all", "--jobs=10"))
        self.assertRegex(asked.argv[4], r"^--format=[0-9a-f]{16}\|%i\|%T\|%M\|%N\|%u\|%r\|%j$")
        self.assertEqual(self.remote.of("collected"), [])
        # Once it ended, her view of the queue gives the verdict.
        mine = snapshot((b"10|RUNNING|0:04|", b"10|COMPLETED|0:09|"))
        self.clock.advance(AGE)
        self.assertEqual(self.result("exitstatus", ALICE),
                         ExitStatus(0, "00:00:09", "COMPLETED", OUTPUT.decode()))


class RegressionTests(ConnectorTestCase):
    """Bugs found by review, each pinned by a test."""

    identities = IdentityMap(parse_mapping(MAPPING))

    def test_one_broken_mapped_login_does_not_hide_the_owner(self):
        def test(call):
            if call.user == "dssr-alice":
                return ConnectionLost("alice's key was refused")
            if "-o" in call.argv:
                return ok() if call.user == "dssr-bob" else exited(1)
            return exited(1)

        self.remote.answer("test", test)
        self.remote.answer("tail", ok(b"bob's output\n"))
        self.assertEqual(self.result("request_tail", GONE, 5), "bob's output\n")
        self.assertEqual(self.remote.of("tail")[0].user, "dssr-bob")

    def test_owner_lookup_fails_loudly_only_when_nobody_matched(self):
        self.remote.answer("test", lambda call: (ConnectionLost("down") if call.user
                                                 else exited(1)))
        self.assertIsInstance(self.error(Unavailable, "request_tail", GONE, 5), Unavailable)

    def test_terminate_and_release_of_a_job_not_in_the_queue_probe_nobody(self):
        self.clock.advance(AGE)
        self.assertIsNone(self.result("terminate", GONE))
        self.error(NotFound, "release", GONE)
        self.assertEqual(set(self.remote.keys()), {"squeue"})

    def test_terminate_and_release_of_a_job_privatedata_may_hide_say_so(self):
        # No mapped user's job in the service account's queue: PrivateData=jobs may hide
        # Alice's job 10 from it. Was: /terminate true having cancelled nothing.
        [line] = [line for line in SQUEUE.stdout.split(b"\n") if line.startswith(b"10|")]
        self.remote.answer("squeue", snapshot((line + b"\n", b"")))
        self.remote.answer("cat", NO_FILE)
        self.remote.answer("test", exited(1))
        for method in ("terminate", "release"):
            self.clock.advance(AGE)
            error = self.error(Unavailable, method, ALICE)
            self.assertIn("DSSR cannot tell whether job 10 ended", error.message)
            self.assertIn("sacctmgr add coordinator account=ACCOUNT names=dssr-svc",
                          error.message)
        # Still nobody's login but the service account's.
        self.assertEqual({call.user for call in self.remote.calls}, {None})
        self.assertNotIn("scancel", self.remote.keys())
        # The job's own end record (the service account's job, purged) says it ended.
        self.remote.answer("cat", ok(END_RECORD_FAILED))
        self.clock.advance(AGE)
        self.assertIsNone(self.result("terminate", GONE))

    def test_release_of_a_job_that_just_left_is_not_found(self):
        self.remote.answer("scontrol release", captured("scontrol_release_unknown", 1))
        self.clock.advance(AGE)
        self.error(NotFound, "release", HELD)

    def test_tail_is_capped_in_bytes_on_the_cluster(self):
        self.remote.answer("tail", ok(b"x\n"))
        self.result("request_tail", RUNNING, 3)
        argv = self.remote.of("tail")[0].argv
        self.assertEqual(argv[-1], str(OUTPUT_BYTES))
        # tests/test_jobfiles.py runs TAIL for real: it cuts at that many bytes.

    def test_array_job_ids_reach_slurm_intact(self):
        self.remote.answer("squeue", snapshot((b"9|RUNNING|", b"12_3|RUNNING|")))
        self.remote.answer("scontrol show", SHOW_UNKNOWN)
        self.result("events", JobRef(RUNNING.name, 4, "12_3"))
        self.assertEqual(self.remote.of("scontrol show")[0].argv,
                         ("scontrol", "show", "job", "12_3"))

    def test_unknown_state_stays_tracked_as_running(self):
        self.remote.answer("squeue", snapshot((b"9|RUNNING|", b"9|SOME_NEW_STATE|")))
        self.assertIn(ListedJob(RUNNING.name, "9"), self.result("running"))


class MetricsTests(ConnectorTestCase):
    def test_snapshot_and_job_samples(self):
        for _ in range(3):
            self.result("running")
        samples = {(s.name, tuple(s.labels.items())): s.value for s in self.connector.metrics()}
        self.assertEqual(samples[("dssr_queue_snapshots", ())], 1)
        self.assertEqual(samples[("dssr_queue_snapshot_shared", ())], 2)
        self.assertEqual(samples[("dssr_jobs", (("state", "RUNNING"),))], 2)


class CommandLogTests(ConnectorTestCase):
    def test_commands_are_logged_at_debug_without_stdin(self):
        self.remote.answer("squeue", SQUEUE_EMPTY)
        self.remote.answer("submit", SBATCH)
        with capturedLogs() as events:
            self.result("running")
            self.result("submit", self.submit_request(script=template()))
        lines = [formatEvent(event) for event in events
                 if event["log_level"] == LogLevel.debug]
        self.assertTrue(any(line.startswith("dssr-svc: squeue ") and "-> exit 0" in line
                            for line in lines), lines)
        submit = next(line for line in lines if "sbatch --parsable" in line)
        self.assertIn("-> exit 0", submit)
        stdin = self.remote.of("submit")[0].stdin.decode()
        self.assertNotIn(stdin[-200:], "\n".join(lines))
        for secret in (APP_PASSWORD, OWNER_PASSWORD):
            self.assertNotIn(secret, "\n".join(lines))

    def test_transport_failures_are_logged(self):
        self.remote.answer("squeue", ConnectionLost("gone"))
        with capturedLogs() as events:
            self.error(Unavailable, "running")
        self.assertIn("squeue", formatEvent(events[-1]))
        self.assertIn("gone", formatEvent(events[-1]))


TOKENS = AccessTokens(b"k" * 32)
APP_TOKEN = TOKENS.issue("9", 4)
APP_PORT = app_ports(RUNNING.name, 4)[1]  # the first DSSR chose was taken on the node
APP_RECORD = f"NODE=vm\nPORT={APP_PORT}\nPASSWORD=app-pw\n".encode()


class InteractiveTests(ConnectorTestCase):
    """info, connect and the proxy's lookup, from the app record on the cluster."""

    def setUp(self):
        super().setUp()
        self.connector = self.make(
            jobs=JobsAddresses(parse_jobs_domain("http://proxy:8081/job$"), TOKENS))
        self.remote.answer("cat", ok(APP_RECORD))

    def test_info_and_connect_of_a_running_app(self):
        url = f"http://proxy:8081/job4/?dssr_token={APP_TOKEN}"
        self.assertEqual(self.result("request_info", RUNNING), JobInfo(url=url))
        self.assertEqual(self.result("request_connect", RUNNING), AppAccess(url, "app-pw"))
        cat, = {call.argv for call in self.remote.of("cat")}
        self.assertEqual(cat, ("cat", "--", f"{SCRATCH}/.jarvice/{RUNNING.name}.9.app"))

    def test_the_app_s_url_template(self):
        template = "URL=https://%PUBLICADDR%/vnc.html?password=%NIMBIXPASSWD%&x=1\n"
        self.remote.answer("cat", ok(APP_RECORD + template.encode()))
        url = f"http://proxy:8081/job4/vnc.html?password=app-pw&x=1&dssr_token={APP_TOKEN}"
        self.assertEqual(self.result("request_info", RUNNING), JobInfo(url=url))
        self.assertEqual(self.result("request_connect", RUNNING), AppAccess(url, "app-pw"))

    def test_the_proxys_lookup(self):
        self.assertEqual(self.result("interactive_app", "9", 4),
                         InteractiveApp(("tcp", "vm", APP_PORT, None)))
        self.assertIsNone(self.result("interactive_app", "9", 5))  # another job's number
        self.assertIsNone(self.result("interactive_app", "99", 4))  # no such job

    def test_a_record_naming_another_place_is_ignored(self):
        # The job wrote its own record: a node it was not given, a port DSSR did not
        # choose for it (the login node's sshd, slurmrestd, a metadata service...).
        for node, port in (("10.0.0.1", APP_PORT), ("vm", 22), ("vm", 6820),
                           ("vm", app_ports(RUNNING.name, 5)[0])):
            self.remote.answer("cat", ok(f"NODE={node}\nPORT={port}\nPASSWORD=p\n".encode()))
            with capturedLogs() as events:
                self.assertIsNone(self.result("interactive_app", "9", 4), (node, port))
                self.assertEqual(self.result("request_info", RUNNING), JobInfo())
            warnings = [formatEvent(event) for event in events
                        if event["log_level"] == LogLevel.warn
                        and "app record" in formatEvent(event)]
            self.assertEqual(len(warnings), 2, warnings)
            self.assertIn(f"names {node}:{port}", warnings[0])

    def test_no_url_before_the_app_listens_or_once_it_ended(self):
        self.remote.answer("cat", NO_FILE)
        self.assertEqual(self.result("request_info", RUNNING), JobInfo())
        self.assertIsNone(self.result("request_connect", RUNNING))
        self.assertEqual(self.result("request_info", COMPLETED), JobInfo())
        self.assertEqual(len(self.remote.of("cat")), 2)  # an ended job's is not read

    def test_nothing_without_a_jobs_url(self):
        self.connector = self.make()
        self.assertEqual(self.result("request_info", RUNNING), JobInfo())
        self.assertEqual(self.remote.of("cat"), [])
