"""A large list of jobs read off the reactor (dssr/slurm/rest/shrink.py, offload.py): the
cut-down answer reads as the whole one did, on every answer captured from a live
slurmrestd, and the child process that cuts it is real."""

import copy
import json

from treq.testing import RequestTraversalAgent
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource

from dssr.errors import Unavailable
from dssr.slurm.interfaces import JOB_PREFIX
from dssr.slurm.rest import answers
from dssr.slurm.rest.answers import AnswerError
from dssr.slurm.rest.client import RestClient
from dssr.slurm.rest.offload import JobsReader
from dssr.slurm.rest.shrink import shrink
from tests.slurm.restd_fixtures import FIXTURES, captured, document

NOW = 1_800_000_000.0


def listings() -> list[tuple[str, dict]]:
    """Every captured answer that lists jobs (``GET .../jobs`` and ``.../job/{id}``)."""
    found = []
    for release, version in captured():
        where = f"{release}/{version}"
        for path in sorted(FIXTURES.preauthChild(where).globChildren("*.json")):
            name = path.basename()[:-5]
            answer = document(where, name)
            if isinstance(answer.get("jobs"), list) and answer["jobs"] \
                    and not name.startswith("slurmdb"):
                found.append((f"{where}/{name}", answer))
    return found


def big_queue(count: int) -> dict:
    """A v0.0.45 answer of ``count`` jobs (copies of those captured), one in three not
    Jarvice's."""
    captured_jobs = document("26.05.3/v0.0.45", "jobs")["jobs"]
    jobs = []
    for index in range(count):
        job = copy.deepcopy(captured_jobs[index % len(captured_jobs)])
        job["job_id"] = 1000 + index
        job["name"] = f"{JOB_PREFIX}big-{index}" if index % 3 else f"other-{index}"
        jobs.append(job)
    return {**document("26.05.3/v0.0.45", "jobs"), "jobs": jobs}


class ShrinkTests(SynchronousTestCase):
    def test_every_captured_listing_reads_the_same_cut_down(self):
        seen = listings()
        self.assertGreater(len(seen), 30)  # every release and version, every ending
        for where, answer in seen:
            shrunk = shrink(answer, JOB_PREFIX)
            self.assertEqual(answers.queue(shrunk, NOW), answers.queue(answer, NOW), where)
            self.assertEqual(answers.errors(shrunk), answers.errors(answer), where)

    def test_only_jarvice_jobs_and_their_fields_are_kept(self):
        answer = big_queue(30)
        shrunk = shrink(answer, JOB_PREFIX)
        self.assertEqual(len(shrunk["jobs"]), 20)
        self.assertLess(len(json.dumps(shrunk)), len(json.dumps(answer)) / 10)
        self.assertEqual(answers.queue(shrunk, NOW), answers.queue(answer, NOW))

    def test_what_the_whole_answer_refuses_the_cut_one_refuses(self):
        for broken in ({"jobs": [7]}, {"jobs": [{"name": f"{JOB_PREFIX}x"}]}):
            self.assertRaises(AnswerError, answers.queue, shrink(broken, JOB_PREFIX), NOW)
        errors = {"errors": [{"error_number": 1007, "error": "refused"}], "jobs": []}
        self.assertEqual(shrink(errors, JOB_PREFIX), errors)
        self.assertEqual(shrink([1, 2], JOB_PREFIX), [1, 2])


class ReaderTests(TestCase):
    """The jobs reader with the real reactor: above its size, a real child process."""

    async def test_a_large_answer_is_cut_down_by_a_child(self):
        reader = JobsReader(reactor, JOB_PREFIX, 30)
        answer = big_queue(400)
        data = json.dumps(answer).encode()
        self.assertGreater(len(data), reader.above)
        read = await reader.read(data)
        self.assertEqual(reader.offloaded, 1)
        self.assertEqual(read, shrink(answer, JOB_PREFIX))
        self.assertEqual(len(answers.queue(read, NOW)), 266)

    async def test_a_large_answer_that_is_not_json_is_none(self):
        reader = JobsReader(reactor, JOB_PREFIX, 30, above=10)
        self.assertIsNone(await reader.read(b"<html>" + b"x" * 100))
        self.assertEqual(reader.offloaded, 1)

    async def test_a_child_over_its_time_is_killed_and_said(self):
        reader = JobsReader(reactor, JOB_PREFIX, 0.001, above=10)
        with self.assertRaises(Unavailable) as caught:
            await reader.read(json.dumps(big_queue(400)).encode())
        self.assertIn("list of jobs took over 0.001 s", caught.exception.message)


class NoProcesses:
    """A reactor that can start no process (out of them, or of memory)."""

    def spawnProcess(self, *args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")


class NoChildTests(TestCase):
    async def test_no_child_is_unavailable_and_says_why(self):
        reader = JobsReader(NoProcesses(), JOB_PREFIX, 30, above=10)
        with self.assertRaises(Unavailable) as caught:
            await reader.read(json.dumps(big_queue(3)).encode())
        self.assertIn("no process could read slurmrestd's", caught.exception.message)
        self.assertIn("Resource temporarily unavailable", caught.exception.message)


class Listing(Resource):
    isLeaf = True

    def __init__(self, answer: dict):
        super().__init__()
        self.body = json.dumps(answer).encode()

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        return self.body


class ClientListingTests(TestCase):
    async def test_a_large_listing_goes_through_the_reader_and_nothing_else_does(self):
        answer = big_queue(40)
        size = len(json.dumps(answer))
        reader = JobsReader(reactor, JOB_PREFIX, 30, above=size - 1)
        client = RestClient(RequestTraversalAgent(Listing(answer)), "http://restd:6820",
                            Clock(), 5, jobs_reader=reader)
        listed = await client.request("GET", "/slurm/v0.0.45/jobs", "svc", "tok",
                                      listing=True)
        self.assertEqual((listed.status, listed.document), (200, shrink(answer, JOB_PREFIX)))
        whole = await client.request("GET", "/slurm/v0.0.45/job/1000", "svc", "tok")
        self.assertEqual(whole.document, answer)
        self.assertEqual(reader.offloaded, 1)
        # A listing no larger than ``above`` is read here, whole.
        reader.above = size
        small = await client.request("GET", "/slurm/v0.0.45/jobs", "svc", "tok", listing=True)
        self.assertEqual(small.document, answer)
        self.assertEqual(reader.offloaded, 1)
