"""The API on a real listening port: what only a socket shows, and a whole job lifecycle."""

import base64
import io
import json
import os
import urllib.error
import urllib.request

import treq
from twisted.internet import reactor, threads
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import FileBodyProducer, HTTPConnectionPool
from twisted.web.iweb import UNKNOWN_LENGTH

from dssr.api import DSSRApi
from dssr.connectors.dummy import DummyConnector
from dssr.edge import EdgeLimits, make_site
from dssr.executors.config import ExecutorSettings
from tests.executors.sample import template
from tests.upstream import form_body, largest_submit

SCRIPT = base64.b64encode(template().encode()).decode()


class ServedCase(TestCase):
    """A DSSR on 127.0.0.1 over the dummy connector, its time driven by a Clock."""

    server_key = "upstream:pw"
    max_body = 64 * 1024
    executor = ExecutorSettings()

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        state = self.mktemp()
        self.connector = DummyConnector(os.path.join(state, "db.sqlite"), self.clock,
                                        os.path.join(state, "data"), failing_percent=0,
                                        executor=self.executor)
        self.connector.service.startService()
        self.addCleanup(self.connector.service.stopService)
        api = DSSRApi(self.connector, server_key=self.server_key)
        self.site = make_site(api, EdgeLimits(max_body=self.max_body))
        port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.base = f"http://127.0.0.1:{port.getHost().port}"
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.auth = ("upstream", "pw")

    async def post(self, path, args=None, **kwargs):
        kwargs.setdefault("auth", self.auth)
        if args is not None:
            kwargs["data"] = {"args": json.dumps(args)}
        response = await treq.post(self.base + path, pool=self.pool, **kwargs)
        return response.code, await response.content()

    async def answer(self, path, args=None):
        code, body = await self.post(path, args)
        self.assertEqual(code, 200, body)
        return json.loads(body)


class SocketTests(ServedCase):
    async def test_body_over_limit_is_413(self):
        code, body = await self.post("/submit", data=b"args=" + b"x" * (self.max_body + 1),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(code, 413)
        self.assertEqual(json.loads(body)["field"], "args")

    async def test_a_client_that_sends_its_whole_body_first_reads_the_413(self):
        # urllib writes the whole body before it reads: over a connection closed at once
        # it meets BrokenPipeError instead of the answer.
        request = urllib.request.Request(
            self.base + "/online", data=b"args=" + b"x" * (16 * self.max_body),
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Authorization": "Basic " + base64.b64encode(b"upstream:pw").decode()})

        def post():
            try:
                urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, json.loads(error.read())
            return None

        code, body = await threads.deferToThread(post)
        self.assertEqual((code, body["field"]), (413, "args"))
        while self.site.open:  # the client closed: so does the edge, at once
            await deferLater(reactor, 0.01, lambda: None)

    async def test_chunked_body_over_limit_is_413(self):
        body = FileBodyProducer(io.BytesIO(b"args=" + b"x" * (self.max_body * 2)))
        body.length = UNKNOWN_LENGTH  # sent chunked: no Content-Length to refuse early
        code, _ = await self.post("/submit", data=body,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(code, 413)

    async def test_body_under_limit_is_served(self):
        code, body = await self.post("/online", data=b"args=" + b"x" * (self.max_body - 100))
        self.assertEqual((code, body), (200, b"true"))

    async def test_auth_on_the_wire(self):
        code, _ = await self.post("/running", auth=None)
        self.assertEqual(code, 401)
        code, _ = await self.post("/running", auth=("upstream", "nope"))
        self.assertEqual(code, 401)
        code, body = await self.post("/live", auth=None)
        self.assertEqual((code, body), (200, b'{"status":"OK"}'))


class LargestSubmitTests(ServedCase):
    max_body = EdgeLimits().max_body
    executor = ExecutorSettings(interactive=True)  # upstream's script is an interactive job

    async def test_the_largest_realistic_submit_is_served(self):
        code, body = await self.post("/submit", data=form_body(largest_submit()), headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(code, 200, body)


class LifecycleOverHTTPTests(ServedCase):
    async def test_full_lifecycle(self):
        ref = {"name": "life-1", "number": 1}
        jobid, _ = await self.answer(
            "/submit", {**ref, "nodes": 2, "hpc_script": {"singularity": SCRIPT}, "bearer": "x"})
        ref["jobid"] = jobid
        self.assertEqual(await self.answer("/queued"), [["life-1", jobid]])
        self.assertEqual(await self.answer("/runstatus", ref),
                         [[], "00:00:00", f"life-1/1/{jobid}", None])

        self.clock.advance(7)
        self.assertEqual(await self.answer("/running"), [["life-1", jobid]])
        nodes, elapsed, path, _ = await self.answer("/runstatus", ref)
        self.assertEqual((nodes, elapsed), (["dummy0", "dummy1"], "00:00:02"))
        code, tail = await self.post(f"/request/{path}/tail", {"qs": {"lines": ["1"]}})
        self.assertEqual((code, tail), (200, b"working, second 2\n"))
        info = await self.answer(f"/request/{path}/info")
        self.assertEqual(info, {"about": "", "help": "", "url": "", "actions": {}})
        self.assertIn("JobState=RUNNING", await self.answer("/events", ref))

        self.clock.advance(60)
        self.assertEqual(await self.answer("/running"), [])
        self.assertEqual(await self.answer("/queued"), [])
        rc, totaltime, (stdout, verdict) = await self.answer("/exitstatus", ref)
        self.assertEqual((rc, totaltime), (0, "00:00:10"))
        self.assertTrue(stdout.endswith("\ncompleted"))
        self.assertIn("COMPLETED", verdict)
        self.assertEqual(await self.answer("/exitstatus", ref), [rc, totaltime, [stdout, verdict]])

    async def test_terminate_and_release(self):
        held = {"name": "held-1", "number": 2, "nodes": 1,
                "hpc_script": {"singularity": SCRIPT}, "held": True}
        jobid, _ = await self.answer("/submit", held)
        ref = {"name": "held-1", "number": 2, "jobid": jobid}
        self.clock.advance(100)
        self.assertEqual(await self.answer("/queued"), [["held-1", jobid]])
        self.assertIs(await self.answer("/release", ref), True)
        self.clock.advance(6)
        self.assertEqual(await self.answer("/running"), [["held-1", jobid]])
        self.assertIs(await self.answer("/terminate", ref), True)
        self.clock.advance(1)
        rc, _, (_, verdict) = await self.answer("/exitstatus", ref)
        self.assertEqual((rc, verdict),
                         (-15, "<< termination state: CANCELLED -- see STDOUT for job errors >>"))
