"""The dummy connector answers as the Slurm connector does: one request table, both.

Upstream integrators test against the dummy; an answer it gives that the Slurm
connector would not (a 200 for a script Slurm refuses, -9 for a live job, ``true``
for another name's job) is a bug they only meet in production.
"""

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from dssr.compose import slurm_over
from dssr.connectors.dummy import SCHEMA, DummyConnector
from dssr.errors import DSSRError
from dssr.executors.config import ExecutorSettings
from dssr.jobs import ExitStatus, JobRef, SubmitRequest
from tests.executors.sample import template
from tests.fakes import MemoryPool
from tests.slurm.fakes import FakeRemote, captured, exited, ok

SQUEUE = captured("squeue_snapshot", 0)
NO_FILE = exited(1, b"tail: cannot open 'x' for reading: No such file or directory\n")
LIVE_NAME = "20261124140300-J7K8L-jarvice-ubuntu-kirby_s1"  # job 9, RUNNING, in SQUEUE
GONE_NAME = "20261124135900-Z9Y8X-jarvice-ubuntu-kirby_s1"

# (call, argument): a job ref by role, or a script for /submit.
TABLE = [
    ("submit", template(body="echo ${HOME}\n{DOWNSTREAM_PARAMETERS}\n")),
    ("submit", template(body="echo {HOME}\n{DOWNSTREAM_PARAMETERS}\n")),
    ("submit", template(body="echo no parameters\n")),
    ("submit", template(JOBOBJ_INTERACTIVE="True")),
    ("submit", template(JOBOBJ_APPDEFVERSION="1")),
    ("runstatus", "other"), ("runstatus", "unknown"),
    ("exitstatus", "live"), ("exitstatus", "other"), ("exitstatus", "unknown"),
    ("terminate", "other"), ("terminate", "unknown"),
    ("release", "other"), ("release", "unknown"),
    ("events", "other"), ("events", "unknown"),
]


def outcome(deferred) -> tuple:
    """What the API would make of a connector call: status and field, or the answer."""
    results = []
    deferred.addBoth(results.append)
    [result] = results
    if hasattr(result, "value"):
        error = result.value
        assert isinstance(error, DSSRError), result.getTraceback()
        return error.status, error.field
    if isinstance(result, ExitStatus):
        return 200, result.rc, result.state is None
    return 200, type(result).__name__


class Slurm:
    """The Slurm connector over the fake remote (captured output): job 9 runs."""

    refs = {"live": JobRef(LIVE_NAME, 4, "9"), "other": JobRef("other", 4, "9"),
            "unknown": JobRef(GONE_NAME, 8, "5")}

    def __init__(self):
        remote = FakeRemote(squeue=[SQUEUE], sbatch=[ok(b"9\n")], tail=[NO_FILE],
                            cat=[NO_FILE], test=[exited(1)],
                            sacct=[captured("sacct_job", 1)])
        self.connector = slurm_over(remote, Clock(), ExecutorSettings(), identities=None,
                                    snapshot_ttl=2.0, service_user="dssr-svc")


class Dummy:
    """The dummy connector with one job submitted and running."""

    def __init__(self):
        clock = Clock()
        self.connector = DummyConnector(":memory:", clock, "unused", queued_time=1,
                                        running_time=60)
        self.connector.service.pool = MemoryPool(SCHEMA)
        submitted = outcome(ensureDeferred(self.connector.submit(
            SubmitRequest(LIVE_NAME, 4, 1, "singularity", template(), "", False))))
        assert submitted == (200, "Submitted"), submitted
        clock.advance(2)
        self.refs = {"live": JobRef(LIVE_NAME, 4, "1"), "other": JobRef("other", 4, "1"),
                     "unknown": JobRef(GONE_NAME, 8, "5")}


def answers(kind) -> list[tuple]:
    """The outcome of each row of ``TABLE`` on a fresh connector of ``kind``."""
    found = []
    for row, (call, argument) in enumerate(TABLE):
        side = kind()
        if call == "submit":
            args = (SubmitRequest("parity-1", 1, 1, "singularity", argument, "", False),)
        else:
            args = (side.refs[argument],)
        found.append((row, call, outcome(ensureDeferred(
            getattr(side.connector, call)(*args)))))
    return found


class ParityTests(SynchronousTestCase):
    def test_the_dummy_answers_as_slurm_does(self):
        self.assertEqual(answers(Dummy), answers(Slurm))

    def test_the_table_means_something(self):
        # Each refusal the dummy must share is in it: a bad script, ask-again, wrong job.
        codes = {result[:2] for _, _, result in answers(Slurm)}
        self.assertTrue({(400, "hpc_script"), (503, None), (404, "jobid")} <= codes, codes)
