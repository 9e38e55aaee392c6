"""The dummy connector: lifecycle on a driven clock, persistence across restarts."""

import os
import random

import treq
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from dssr.connectors.dummy import RETENTION, DummyConnector
from dssr.connectors.dummy_app import PretendApp
from dssr.errors import Forbidden, NotFound, NotYet
from dssr.jobs import UNKNOWN_EXIT, JobRef, ListedJob, SubmitRequest
from dssr.proxy.server import ProxyFactory, ProxyLimits
from dssr.proxy.tokens import AccessTokens
from dssr.proxy.urls import JobsAddresses, parse_jobs_domain
from tests.executors.sample import template
from tests.integration.sshd import free_port


def request(name="job-1", held=False, nodes=2):
    return SubmitRequest(name=name, number=1, nodes=nodes, executor="singularity",
                         script=template(), held=held)


TOKENS = AccessTokens(b"k" * 32)

class DummyCase(TestCase):
    failing_percent = 0
    interactive = False

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.state = self.mktemp()
        self.connector = self.start()

    def start(self):
        connector = DummyConnector(
            os.path.join(self.state, "dummy.sqlite"), self.clock,
            os.path.join(self.state, "data"), queued_time=5, running_time=10,
            failing_percent=self.failing_percent, interactive=self.interactive,
            rng=random.Random(1))
        connector.service.startService()
        self.addCleanup(lambda: connector.service.running and connector.service.stopService())
        return connector

    async def submit(self, **kwargs):
        submitted = await self.connector.submit(request(**kwargs))
        return JobRef(kwargs.get("name", "job-1"), 1, submitted.jobid)


class LifecycleTests(DummyCase):
    async def test_queued_running_completed(self):
        ref = await self.submit()
        self.assertEqual(await self.connector.queued(), [ListedJob("job-1", ref.jobid)])
        self.assertEqual(await self.connector.running(), [])
        status = await self.connector.runstatus(ref)
        self.assertEqual((status.nodes, status.elapsed), ((), "00:00:00"))
        self.assertIsNone(await self.connector.request_tail(ref, 10))

        self.clock.advance(7)
        self.assertEqual(await self.connector.queued(), [])
        self.assertEqual(await self.connector.running(), [ListedJob("job-1", ref.jobid)])
        status = await self.connector.runstatus(ref)
        self.assertEqual((status.nodes, status.elapsed), (("dummy0", "dummy1"), "00:00:02"))
        self.assertEqual(await self.connector.request_tail(ref, 1), "working, second 2\n")
        self.assertIn("JobState=RUNNING", await self.connector.events(ref))

        self.clock.advance(60)
        self.assertEqual(await self.connector.running(), [])
        status = await self.connector.exitstatus(ref)
        self.assertEqual((status.rc, status.totaltime, status.state), (0, "00:00:10", "COMPLETED"))
        self.assertEqual(status.output.splitlines()[-2:],
                         ["working, second 10", "completed"])
        # A repeated call answers the same (was: -9, the job deleted on the first)...
        self.assertEqual(await self.connector.exitstatus(ref), status)
        await self.connector.gc()
        self.assertEqual(await self.connector.exitstatus(ref), status)
        # ...until gc, once the retention has passed since the job ended.
        self.clock.advance(RETENTION)
        await self.connector.gc()
        self.assertEqual(await self.connector.exitstatus(ref), UNKNOWN_EXIT)
        self.assertIsNone(await self.connector.runstatus(ref))

    async def test_a_live_job_is_ask_again(self):
        ref = await self.submit()
        for _ in range(2):  # queued, then running
            error = await self.assertFailure(ensureDeferred(self.connector.exitstatus(ref)), NotYet)
            self.assertEqual(error.headers(), {"Retry-After": "5"})
            self.clock.advance(7)

    async def test_tail_honours_lines(self):
        ref = await self.submit()
        self.clock.advance(100)
        tail = await self.connector.request_tail(ref, 3)
        self.assertEqual(tail, "working, second 9\nworking, second 10\n"
                               "completed\n")
        self.assertEqual(len((await self.connector.request_tail(ref, 1000)).splitlines()), 12)

    async def test_terminate_running_job_ends_cancelled(self):
        ref = await self.submit()
        self.clock.advance(8)
        await self.connector.terminate(ref)
        self.clock.advance(100)
        status = await self.connector.exitstatus(ref)
        self.assertEqual((status.rc, status.totaltime, status.state),
                         (-15, "00:00:03", "CANCELLED"))

    async def test_terminate_queued_job_never_runs(self):
        ref = await self.submit()
        await self.connector.terminate(ref)
        self.clock.advance(100)
        self.assertEqual(await self.connector.running(), [])
        status = await self.connector.exitstatus(ref)
        self.assertEqual((status.rc, status.state, status.output), (-15, "CANCELLED", ""))

    async def test_held_job_waits_for_release(self):
        ref = await self.submit(held=True)
        self.clock.advance(100)
        self.assertEqual(await self.connector.queued(), [ListedJob("job-1", ref.jobid)])
        await self.connector.release(ref)
        self.clock.advance(6)
        self.assertEqual(await self.connector.running(), [ListedJob("job-1", ref.jobid)])

    async def test_submit_is_idempotent_while_live(self):
        first = await self.submit()
        self.assertEqual((await self.submit()).jobid, first.jobid)
        self.clock.advance(100)
        self.assertNotEqual((await self.submit()).jobid, first.jobid)

    async def test_unknown_job(self):
        ref = JobRef("nobody", 1, "4242")
        self.assertIsNone(await self.connector.runstatus(ref))
        self.assertEqual(await self.connector.exitstatus(ref), UNKNOWN_EXIT)
        with self.assertRaises(NotFound):
            await self.connector.events(ref)

    async def test_wrong_name_for_jobid_is_the_wrong_job(self):
        # As the Slurm connector answers (was: None, -9, true, true).
        ref = await self.submit()
        other = JobRef("other", 1, ref.jobid)
        for method in ("runstatus", "exitstatus", "terminate", "release", "events"):
            error = await self.assertFailure(ensureDeferred(getattr(self.connector, method)(other)),
                                             NotFound)
            self.assertEqual(error.field, "jobid", method)
        self.assertEqual(await self.connector.queued(), [ListedJob("job-1", ref.jobid)])

    async def test_unknown_job_terminates_and_releases_as_on_slurm(self):
        gone = JobRef("gone", 1, "99")
        self.assertIsNone(await self.connector.terminate(gone))  # nothing left to cancel
        await self.assertFailure(ensureDeferred(self.connector.release(gone)), NotFound)
        self.assertEqual(await self.connector.exitstatus(gone), UNKNOWN_EXIT)

    async def test_batch_job_info_has_no_url(self):
        ref = await self.submit()
        self.clock.advance(6)
        self.assertEqual((await self.connector.request_info(ref)).url, "")
        self.assertIsNone(await self.connector.request_screenshot(ref))


class FailingTests(DummyCase):
    failing_percent = 100

    async def test_job_fails(self):
        ref = await self.submit()
        self.clock.advance(100)
        status = await self.connector.exitstatus(ref)
        self.assertEqual((status.rc, status.state), (1, "FAILED"))


class InteractiveTests(DummyCase):
    interactive = True

    async def test_info_gives_url_while_running(self):
        ref = await self.submit()
        self.assertEqual((await self.connector.request_info(ref)).url, "")
        self.clock.advance(6)
        self.assertEqual((await self.connector.request_info(ref)).url,
                         "https://dummy.invalid/job-1/")


class ProxiedTests(DummyCase):
    """The whole interactive flow without a cluster: info URL, proxy, pretend app."""

    interactive = True

    def start(self):
        self.proxy_port = free_port()
        jobs_url = parse_jobs_domain(f"http://127.0.0.1:{self.proxy_port}/job$")
        app = PretendApp(reactor)
        connector = DummyConnector(
            os.path.join(self.state, "dummy.sqlite"), self.clock,
            os.path.join(self.state, "data"), queued_time=5, running_time=10,
            failing_percent=0, interactive=True, jobs=JobsAddresses(jobs_url, TOKENS), app=app)
        connector.service.startService()
        self.addCleanup(lambda: connector.service.running and connector.service.stopService())
        proxy = ProxyFactory(jobs_url, connector, reactor, ProxyLimits(), TOKENS)
        listening = reactor.listenTCP(self.proxy_port, proxy, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        return connector

    async def test_a_browser_gets_the_page_through_the_proxy(self):
        ref = await self.submit()
        self.clock.advance(6)
        url = (await self.connector.request_info(ref)).url
        self.assertTrue(url.startswith(f"http://127.0.0.1:{self.proxy_port}/job1/?dssr_token="))
        self.assertEqual((await self.connector.request_connect(ref)).address, url)
        pool = HTTPConnectionPool(reactor, persistent=False)
        response = await treq.get(url, pool=pool)  # the redirect sets the cookie
        self.assertEqual(response.code, 200)
        self.assertIn(b"A dummy interactive job", await response.content())
        wrong = url[:-4] + "xxxx"
        response = await treq.get(wrong, pool=pool)
        self.assertEqual(response.code, 403)
        await response.content()
        self.clock.advance(10)  # the job ended
        self.assertIsNone(await self.connector.interactive_app(ref.jobid, 1))


class RestartTests(DummyCase):
    async def test_restart_loses_no_job_and_never_reuses_ids(self):
        ref = await self.submit()
        done = await self.submit(name="job-2")
        self.clock.advance(100)
        await self.connector.exitstatus(done)  # deleted: its id must not come back
        self.connector.service.stopService()
        self.connector = self.start()
        status = await self.connector.exitstatus(ref)
        self.assertEqual((status.rc, status.state), (0, "COMPLETED"))
        third = await self.submit(name="job-3")
        self.assertGreater(int(third.jobid), int(done.jobid))


class ListingTests(DummyCase):
    async def test_lists_below_root(self):
        root = os.path.join(self.state, "data")
        os.makedirs(os.path.join(root, "dir", "sub"))
        with open(os.path.join(root, "dir", "file.txt"), "w") as handle:
            handle.write("hello")
        entries = await self.connector.request_pvcls("/dir", False)
        self.assertEqual([(e.path, e.is_dir) for e in entries],
                         [("dir/file.txt", False), ("dir/sub", True)])
        self.assertEqual(entries[0].size, 5)

    async def test_symlink_out_of_root_is_forbidden(self):
        root = os.path.join(self.state, "data")
        os.symlink("/etc", os.path.join(root, "escape"))
        with self.assertRaises(Forbidden):
            await self.connector.request_pvcls("/escape", False)

    async def test_missing_directory(self):
        with self.assertRaises(NotFound):
            await self.connector.request_pvcls("/nothing", False)
