"""Tests for dssr.slurm.parse, mostly on real output captured from the test rig."""

from pathlib import Path

from hypothesis import given, settings
from twisted.trial.unittest import SynchronousTestCase

from dssr.jobs import hms
from dssr.slurm.parse import (
    AccountingRecord,
    QueueJob,
    SlurmOutputError,
    accounting_disabled,
    expand_hostlist,
    normalise_elapsed,
    parse_ping,
    parse_sacct,
    parse_sbatch,
    parse_snapshot,
)
from dssr.slurm.states import Category, category
from tests.slurm.fakes import tokened
from tests.strategies import elapsed_times, hostlists

TOKEN = "5eed0fc0ffee1234"


def jobs_in(text: str) -> list[QueueJob]:
    """The jobs in a snapshot written with the plain format, printed with ``TOKEN``."""
    return parse_snapshot(tokened(text.encode(), TOKEN).decode(), TOKEN)[0]

# Property tests: the same examples on every run (CI must not be lucky).
PROPERTIES = settings(derandomize=True, database=None, max_examples=300, deadline=None)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"


def fixture(name: str) -> str:
    """The text of a captured output (see tests/fixtures/slurm/README.rst)."""
    return (FIXTURES / name).read_text()


class SnapshotTests(SynchronousTestCase):
    """The squeue snapshot of all jobs, as captured with every kind of job in it."""

    def setUp(self) -> None:
        self.jobs = {job.jobid: job for job in jobs_in(fixture("squeue_snapshot.out"))}

    def test_only_jarvice_jobs(self) -> None:
        """Jobs without the jarvice_ prefix are left out; the others keep their ids."""
        self.assertEqual(
            sorted(self.jobs, key=int),
            ["6", "7", "8", "9", "10", "11", "12", "13", "14", "16"],
        )

    def test_running(self) -> None:
        """A running job: nodes, elapsed as HH:MM:SS, owner, name without the prefix."""
        self.assertEqual(
            self.jobs["9"],
            QueueJob(
                jobid="9",
                state="RUNNING",
                elapsed="00:00:04",
                nodes=("vm",),
                owner="dssr-svc",
                reason="None",
                name="20261124140300-J7K8L-jarvice-ubuntu-kirby_s1",
            ),
        )

    def test_owner(self) -> None:
        """The owner is the cluster user the job runs as (here a mapped user)."""
        self.assertEqual(self.jobs["10"].owner, "dssr-alice")
        self.assertEqual(self.jobs["10"].name, "20261124140400-M9N0P-jarvice-ubuntu-alice.smith_s1")

    def test_pending(self) -> None:
        """Pending jobs have no nodes and 00:00:00; the reason says why they wait."""
        for jobid, reason in [("11", "Resources"), ("12", "Priority"), ("13", "JobHeldUser")]:
            with self.subTest(jobid=jobid):
                job = self.jobs[jobid]
                self.assertEqual(
                    (job.state, job.nodes, job.elapsed, job.reason),
                    ("PENDING", (), "00:00:00", reason),
                )

    def test_ended(self) -> None:
        """Ended jobs stay in the snapshot (until MinJobAge) with their final state."""
        states = {jobid: self.jobs[jobid].state for jobid in ["6", "7", "8", "14"]}
        self.assertEqual(
            states, {"6": "COMPLETED", "7": "FAILED", "8": "CANCELLED", "14": "CANCELLED"}
        )
        self.assertEqual(self.jobs["8"].nodes, ("vm",))
        self.assertEqual(self.jobs["14"].nodes, ())

    def test_categories(self) -> None:
        """Each captured job falls in the list upstream expects."""
        by_category = {
            kind: sorted((job.jobid for job in self.jobs.values() if category(job.state) is kind),
                         key=int)
            for kind in Category
        }
        self.assertEqual(by_category[Category.RUNNING], ["9", "10"])
        self.assertEqual(by_category[Category.QUEUED], ["11", "12", "13", "16"])
        self.assertEqual(by_category[Category.ENDED], ["6", "7", "8", "14"])
        self.assertEqual(by_category[Category.UNKNOWN], [])

    def test_separator_in_name(self) -> None:
        """The name is the last field, so it may hold the separator and spaces."""
        self.assertEqual(self.jobs["16"].name, "odd|name with spaces")

    def test_newline_in_name(self) -> None:
        """A name holding a newline spans two lines; the second continues it, and the
        job is left out (no Jarvice name holds a control character) and named."""
        text = tokened(fixture("squeue_snapshot.out").encode(), TOKEN).decode()
        jobs, skipped = parse_snapshot(text, TOKEN)
        self.assertEqual(skipped, ["17"])
        self.assertNotIn("17", [job.jobid for job in jobs])

    def test_a_name_cannot_forge_a_record(self) -> None:
        """A name built to look like whole records after a newline stays one name: it
        cannot know the token."""
        forged = ("jarvice_x\n1|RUNNING|0:01|vm|dssr-svc|None|jarvice_victim\n"
                  "nope|2|RUNNING|0:01|vm|dssr-svc|None|jarvice_victim")
        text = f"{TOKEN}|5|PENDING|0:00||mallory|None|{forged}\n"
        self.assertEqual(parse_snapshot(text, TOKEN), ([], ["5"]))
        self.assertRaises(SlurmOutputError, parse_snapshot,
                          "1|RUNNING|0:01|vm|u|None|jarvice_a\n", TOKEN)

    def test_other_control_characters_are_left_out_too(self) -> None:
        text = (f"{TOKEN}|5|PENDING|0:00||u|None|jarvice_a\tb\n"
                f"{TOKEN}|6|PENDING|0:00||u|None|jarvice_c\n")
        jobs, skipped = parse_snapshot(text, TOKEN)
        self.assertEqual(([job.jobid for job in jobs], skipped), (["6"], ["5"]))

    def test_empty(self) -> None:
        """No jobs, no records."""
        self.assertEqual(jobs_in(fixture("squeue_snapshot_empty.out")), [])
        self.assertEqual(parse_snapshot("", TOKEN), ([], []))

    def test_controller_down_is_told_by_exit_status(self) -> None:
        """With slurmctld down squeue prints nothing on stdout: only its exit status
        (1) and stderr tell this from an empty queue, so callers must check them."""
        self.assertEqual(jobs_in(fixture("squeue_snapshot_down.out")), [])
        self.assertIn("Unable to contact slurm controller", fixture("squeue_snapshot_down.err"))

    def test_unexpected_first_line(self) -> None:
        """A first line that is not a record (a header, a warning) is an error."""
        for text in [
            "JOBID|STATE|TIME|NODELIST|USER|REASON|NAME\n",
            "squeue: warning: something\n1|RUNNING|0:01|vm|u|None|jarvice_a\n",
            "CLUSTER: other\n",
        ]:
            with self.subTest(text=text):
                self.assertRaises(SlurmOutputError, parse_snapshot, text, TOKEN)

    def test_array_and_het_ids(self) -> None:
        """Array and heterogeneous job ids are records, not name continuations."""
        text = (
            "5_3|RUNNING|1:02:03|n[1-2]|u|None|jarvice_a\n"
            "5_[4-9%2]|PENDING|0:00||u|JobArrayTaskLimit|jarvice_b\n"
            "7+1|RUNNING|2-00:00:01|n3|u|None|jarvice_c\n"
        )
        self.assertEqual(
            [(job.jobid, job.elapsed, job.nodes) for job in jobs_in(text)],
            [
                ("5_3", "01:02:03", ("n1", "n2")),
                ("5_[4-9%2]", "00:00:00", ()),
                ("7+1", "48:00:01", ("n3",)),
            ],
        )

    def test_bad_elapsed(self) -> None:
        """A record with a time Slurm cannot have printed is an error."""
        text = f"{TOKEN}|1|RUNNING|1:2:3:4|vm|u|None|jarvice_a\n"
        self.assertRaises(SlurmOutputError, parse_snapshot, text, TOKEN)


class ElapsedTests(SynchronousTestCase):
    """Slurm's time formats, normalised to HH:MM:SS."""

    def test_forms(self) -> None:
        """M:SS, MM:SS, H:MM:SS, D-HH:MM:SS; hours go past 24."""
        cases = {
            "0:00": "00:00:00",
            "0:04": "00:00:04",
            "12:34": "00:12:34",
            "1:02:03": "01:02:03",
            "23:59:59": "23:59:59",
            "00:00:05": "00:00:05",
            "1-00:00:00": "24:00:00",
            "3-04:05:06": "76:05:06",
            "123-00:00:01": "2952:00:01",
            "INVALID": "00:00:00",
        }
        for text, expected in cases.items():
            with self.subTest(text=text):
                self.assertEqual(normalise_elapsed(text), expected)

    @PROPERTIES
    @given(elapsed_times())
    def test_every_form_is_its_seconds(self, elapsed) -> None:
        """Whatever squeue prints is the same time as HH:MM:SS, and normal already."""
        text, seconds = elapsed
        self.assertEqual(normalise_elapsed(text), hms(seconds))
        self.assertEqual(normalise_elapsed(normalise_elapsed(text)), hms(seconds))

    def test_bad(self) -> None:
        """Anything else is an error."""
        for text in ["", "5", "1-", "a:bc", "1:2:3:4", "-1:00", "UNLIMITED", " 0:00"]:
            with self.subTest(text=text):
                self.assertRaises(SlurmOutputError, normalise_elapsed, text)


class HostlistTests(SynchronousTestCase):
    """Host list expansion matches ``scontrol show hostnames``."""

    def test_captured(self) -> None:
        """The expressions the fixtures were captured with expand as scontrol did."""
        for expression, name in [
            ("node[1-3,7]", "scontrol_show_hostnames.out"),
            ("a[01-03],b9", "scontrol_show_hostnames_padded.out"),
            ("a1,rack[1-2]-n[1-2]", "scontrol_show_hostnames_groups.out"),
        ]:
            with self.subTest(expression=expression):
                self.assertEqual(expand_hostlist(expression), fixture(name).split())

    def test_simple(self) -> None:
        """Empty, single names, natural width, suffixes after a group."""
        self.assertEqual(expand_hostlist(""), [])
        self.assertEqual(expand_hostlist("vm"), ["vm"])
        self.assertEqual(expand_hostlist("a1,b[2-3]"), ["a1", "b2", "b3"])
        self.assertEqual(expand_hostlist("n[9-10]"), ["n9", "n10"])
        self.assertEqual(expand_hostlist("n[098-100]"), ["n098", "n099", "n100"])
        self.assertEqual(expand_hostlist("gpu[1-2]-ib"), ["gpu1-ib", "gpu2-ib"])
        self.assertEqual(expand_hostlist("[1-2]"), ["1", "2"])

    @PROPERTIES
    @given(hostlists())
    def test_any_list_expands_to_its_hosts(self, hostlist) -> None:
        """Names, ranges, padding and several groups, in the order scontrol gives them."""
        expression, hosts = hostlist
        self.assertEqual(expand_hostlist(expression), hosts)

    def test_bad(self) -> None:
        """Malformed lists are errors, not guesses."""
        for text in ["a[", "a]", "a[1-2", "a[3-1]", "a[x]", "a[]", "a,,b", "a,", "a[[1]]",
                     "a[1-2-3]", "a[-1]"]:
            with self.subTest(text=text):
                self.assertRaises(SlurmOutputError, expand_hostlist, text)

    def test_too_many(self) -> None:
        """A list naming more hosts than Slurm allows is refused before it is built."""
        self.assertRaises(SlurmOutputError, expand_hostlist, "a[0-99999999999]")
        self.assertRaises(SlurmOutputError, expand_hostlist, "a[1-1000]b[1-1000]")
        self.assertEqual(len(expand_hostlist("a[1-256]b[1-256]")), 65536)


class SacctTests(SynchronousTestCase):
    """sacct for one job, and its failure without accounting."""

    def test_accounting_disabled(self) -> None:
        """The rig has no accounting: sacct prints nothing and says so on stderr."""
        self.assertIsNone(parse_sacct(fixture("sacct_job.out")))
        self.assertTrue(accounting_disabled(fixture("sacct_job.err")))
        self.assertFalse(accounting_disabled(fixture("scontrol_show_job_unknown.err")))

    def test_records(self) -> None:
        """State (decorations dropped), exit code and signal, elapsed, name."""
        self.assertEqual(
            parse_sacct("5|COMPLETED|0:0|00:00:05|jarvice_a\n5.batch|COMPLETED|0:0|00:00:05|batch\n"),
            AccountingRecord("COMPLETED", 0, 0, "00:00:05", "jarvice_a"),
        )
        self.assertEqual(
            parse_sacct("6|CANCELLED by 1001|0:15|1-00:00:01|jarvice_b\n"),
            AccountingRecord("CANCELLED", 0, 15, "24:00:01", "jarvice_b"),
        )
        self.assertEqual(parse_sacct("\n7|FAILED|1:0|00:01:00|x\n").state, "FAILED")
        self.assertEqual(parse_sacct("8|COMPLETED|0:0|00:00:05|odd|name\n").name, "odd|name")
        self.assertEqual(parse_sacct("9|NODE_FAIL||00:00:03|x\n").exit_code, 0)

    def test_a_step_out_of_memory(self) -> None:
        """A job whose batch script failed after a step ran out of memory ended so; one
        that succeeded all the same did not."""
        failed = "9|FAILED|1:0|00:00:03|j\n9.batch|FAILED|1:0|00:00:03|batch\n"
        oom = "9.0|OUT_OF_MEMORY|0:125|00:00:03|bash\n"
        self.assertEqual(parse_sacct(failed + oom).state, "OUT_OF_MEMORY")
        self.assertEqual(parse_sacct(failed).state, "FAILED")
        completed = "9|COMPLETED|0:0|00:00:03|j\n" + oom
        self.assertEqual(parse_sacct(completed).state, "COMPLETED")
        # A step of another job (an id sacct also matched) decides nothing.
        self.assertEqual(parse_sacct(failed + "19.0|OUT_OF_MEMORY|0:125|00:00:03|x\n").state,
                         "FAILED")

    def test_captured(self) -> None:
        """Every end the accounting rig can cause, and one written by hand (README.rst)."""
        for stem, state, exit_code, signal in [
            ("completed", "COMPLETED", 0, 0), ("failed", "FAILED", 1, 0),
            ("cancelled", "CANCELLED", 0, 0), ("timeout", "TIMEOUT", 0, 0),
            ("out_of_memory", "OUT_OF_MEMORY", 1, 0), ("node_fail", "NODE_FAIL", 0, 0),
            ("preempted", "PREEMPTED", 0, 0),
        ]:
            with self.subTest(stem=stem):
                record = parse_sacct(fixture(f"accounting/sacct_{stem}.out"))
                self.assertEqual((record.state, record.exit_code, record.signal),
                                 (state, exit_code, signal))
                self.assertTrue(record.name.startswith("jarvice_"), record.name)
        self.assertIsNone(parse_sacct(fixture("accounting/sacct_unknown.out")))
        self.assertEqual(parse_sacct(fixture("accounting/sacct_running.out")).state, "RUNNING")

    def test_slurmdbd_down(self) -> None:
        """sacct without slurmdbd fails, and not as "accounting is disabled"."""
        self.assertEqual(fixture("accounting/sacct_dbd_down.out"), "")
        self.assertFalse(accounting_disabled(fixture("accounting/sacct_dbd_down.err")))

    def test_bad(self) -> None:
        """Lines of another shape are errors."""
        for text in ["5 COMPLETED 0:0 00:00:05 x\n", "5|COMPLETED|0|00:00:05|x\n",
                     "5|COMPLETED|:|00:00:05|x\n",
                     "5|A|0:0|x|y\n", "COMPLETED|0:0|00:00:05|x\n",
                     "5.batch|COMPLETED|0:0|00:00:05|batch\n"]:
            with self.subTest(text=text):
                self.assertRaises(SlurmOutputError, parse_sacct, text)


class SbatchTests(SynchronousTestCase):
    """sbatch --parsable."""

    def test_captured(self) -> None:
        """The captured answer is the job id alone."""
        self.assertEqual(parse_sbatch(fixture("sbatch_parsable.out")), "9")

    def test_cluster(self) -> None:
        """On a multi-cluster setup the id is followed by ;cluster."""
        self.assertEqual(parse_sbatch("1234;cluster-a\n"), "1234")

    def test_bad(self) -> None:
        """Anything else is an error."""
        for text in ["", "\n", "Submitted batch job 5\n", "12 13\n", "12;\n", "x;y\n"]:
            with self.subTest(text=text):
                self.assertRaises(SlurmOutputError, parse_sbatch, text)


class PingTests(SynchronousTestCase):
    """scontrol ping."""

    def test_captured(self) -> None:
        """UP with slurmctld running, DOWN with it stopped."""
        self.assertTrue(parse_ping(fixture("scontrol_ping_up.out")))
        self.assertFalse(parse_ping(fixture("scontrol_ping_down.out")))

    def test_backup(self) -> None:
        """A backup controller that is UP is enough."""
        self.assertTrue(
            parse_ping("Slurmctld(primary) at a is DOWN\nSlurmctld(backup) at b is UP\n")
        )
        self.assertFalse(parse_ping(""))
