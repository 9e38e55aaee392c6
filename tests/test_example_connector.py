"""The worked example of docs/connectors.rst really works through the API."""

import base64
import importlib.util
import json
import os

import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from dssr.api import DSSRApi
from dssr.connectors.interfaces import IConnector
from dssr.connectors.loader import build
from dssr.edge import make_site

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "docs", "example_connector.py")


def load_example():
    spec = importlib.util.spec_from_file_location("example_connector", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ExampleConnectorTests(TestCase):
    def setUp(self):
        self.connector = build(load_example().make_connector, None, reactor)
        port = reactor.listenTCP(0, make_site(DSSRApi(self.connector)),
                                 interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.base = f"http://127.0.0.1:{port.getHost().port}"
        self.pool = HTTPConnectionPool(reactor, persistent=False)

    async def answer(self, path, args=None):
        data = {"args": json.dumps(args)} if args is not None else None
        response = await treq.post(self.base + path, data=data, pool=self.pool)
        self.assertEqual(response.code, 200)
        return json.loads(await response.content())

    async def submit(self, name, body):
        script = base64.b64encode(f"{{DOWNSTREAM_PARAMETERS}}\n{body}\n".encode()).decode()
        jobid, _ = await self.answer("/submit", {"name": name, "number": 1, "nodes": 1,
                                                 "hpc_script": {"singularity": script}})
        return {"name": name, "number": 1, "jobid": jobid}

    async def until_ended(self, ref):
        for _ in range(100):
            if [ref["name"], ref["jobid"]] not in await self.answer("/running"):
                return await self.answer("/exitstatus", ref)
            await deferLater(reactor, 0.05, lambda: None)
        self.fail("the job never ended")

    def test_provides_the_interface(self):
        self.assertTrue(IConnector.providedBy(self.connector))

    async def test_job_succeeds_and_fails(self):
        ok = await self.submit("ok-1", "echo hello")
        bad = await self.submit("bad-1", "echo oops; exit 4")
        rc, _, (stdout, verdict) = await self.until_ended(ok)
        self.assertEqual((rc, stdout.strip()), (0, "hello"))
        self.assertIn("COMPLETED", verdict)
        rc, _, (stdout, verdict) = await self.until_ended(bad)
        self.assertEqual((rc, stdout.strip()), (1, "oops"))

    async def test_terminate(self):
        ref = await self.submit("sleepy-1", "sleep 30")
        self.assertEqual(await self.answer("/running"), [["sleepy-1", ref["jobid"]]])
        self.assertIs(await self.answer("/terminate", ref), True)
        rc, _, _ = await self.until_ended(ref)
        self.assertEqual(rc, -15)
