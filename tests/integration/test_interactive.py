"""Interactive jobs on the rig, through DSSR's proxy over forwarded SSH streams.

The job's app is ``echo_app.py`` (Python's standard library on the node), listening
on the port the batch wrapper picked. The clients are plain sockets in threads, as
a browser would be: through the proxy only, with the token the ``info`` URL carries.
"""

import base64
import http.client
import os
import random
import socket
import time
from urllib.parse import urlsplit

from twisted.internet import reactor, threads
from twisted.internet.defer import ensureDeferred, gatherResults

from dssr.compose import access_tokens, slurm_connector
from dssr.proxy.server import ProxyFactory, ProxyLimits
from dssr.proxy.urls import parse_jobs_domain
from tests.integration import echo_app
from tests.integration.rig import RigCase, job_script
from tests.integration.sshd import free_port
from tests.integration.test_ssh import deferred_test

with open(echo_app.__file__, "rb") as _source:
    APP = base64.b64encode(_source.read()).decode()
# The app as the job's command (no braces: the job script is a template).
APP_BODY = (f"echo {APP} | base64 -d > \"$HOME/echo_app_$$.py\"\n"
            "exec python3 \"$HOME/echo_app_$$.py\"\n")
PAYLOAD = echo_app.payload()


def request(port: int, path: str, cookie: str | None = None, timeout: float = 60,
            host: str | None = None):
    """GET ``path`` from 127.0.0.1:``port`` (naming ``host`` if given): (status, headers,
    body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Cookie": cookie} if cookie else {}
    if host:
        headers["Host"] = host
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def websocket_echo(port: int, path: str, cookie: str, count: int) -> int:
    """Send ``count`` messages over a WebSocket through the proxy; how many came back."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Connection: Upgrade\r\nUpgrade: websocket\r\nCookie: {cookie}\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        stream = sock.makefile("rb")
        status = stream.readline()
        if b" 101 " not in status:
            raise AssertionError(f"no upgrade: {status!r}")
        while stream.readline() not in (b"\r\n", b""):
            pass
        echoed = 0
        for n in range(count):
            message = f"message {n} ".encode() * (n % 50 + 1)
            sock.sendall(echo_app.frame(2, message, os.urandom(4)))
            _, data = echo_app.read_frame(stream)
            echoed += data == message
        sock.sendall(echo_app.frame(8, b"", os.urandom(4)))
        return echoed


class InteractiveApps:
    """For ``RigCase`` tests: interactive jobs running the echo app, and their cookies."""

    async def submit_app(self, label: str, body: str = APP_BODY) -> dict:
        """Submit an interactive job running ``body``; its ref."""
        number = random.randrange(10**6, 10**7)
        name = self.name(label)
        args = {"name": name, "number": number, "nodes": 1, "bearer": "",
                "hpc_script": {"singularity": job_script(body, "JOBOBJ_INTERACTIVE=True")}}
        jobid, _ = await self.answer("/submit", args)
        ref = {"name": name, "number": number, "jobid": jobid}
        self.submitted.append(ref)
        return ref

    async def start_app(self, label: str) -> tuple[dict, str, str]:
        """Submit an interactive job running the echo app; its ref, URL and password."""
        ref = await self.submit_app(label)
        base = f"/request/{ref['name']}/{ref['number']}/{ref['jobid']}"
        for _ in range(240):
            info = await self.answer(base + "/info")
            if info["url"]:
                connect = await self.answer(base + "/connect")
                self.assertEqual(connect["address"], info["url"])
                return ref, info["url"], connect["password"]
            await self.sleep(0.25)
        self.fail("the app never got a URL")

    def cookie(self, ref: dict, url: str) -> str:
        token = urlsplit(url).query.partition("dssr_token=")[2]
        self.assertTrue(token.startswith(f"{ref['jobid']}."), token)
        return f"dssr_job_{ref['number']}={token}"


class InteractiveTests(InteractiveApps, RigCase):
    alone = "bounds how fast the proxy answers once the job ended"
    timeout = 300

    async def start_dssr(self, **overrides):
        reactor.getThreadPool().adjustPoolsize(maxthreads=64)  # 50 clients at once
        self.proxy_port = free_port()
        await super().start_dssr(
            jobs_domain=f"http://127.0.0.1:{self.proxy_port}/job$", **overrides)
        self.proxy = ProxyFactory(parse_jobs_domain(self.settings.jobs_domain),
                                  self.connector, reactor, ProxyLimits(),
                                  access_tokens(self.settings))
        listening = reactor.listenTCP(self.proxy_port, self.proxy, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)

    def open_streams(self) -> int:
        return sum(s.value for s in self.proxy.metrics() if s.name == "dssr_proxy_open_streams")

    @deferred_test
    async def test_an_app_through_the_proxy(self):
        ref, url, password = await self.start_app("app")
        parts = urlsplit(url)
        self.assertEqual(parts.netloc, f"127.0.0.1:{self.proxy_port}")
        self.assertEqual(parts.path, f"/job{ref['number']}/")
        root, cookie = parts.path, self.cookie(ref, url)
        token = cookie.partition("=")[2]
        self.assertEqual(access_tokens(self.settings).verify(token, ref["number"]), ref["jobid"])

        # The URL upstream hands out: a redirect that moves the token into a cookie.
        status, headers, _ = await threads.deferToThread(
            request, self.proxy_port, f"{parts.path}?{parts.query}")
        self.assertEqual(status, 302)
        self.assertEqual(headers["Location"], f"http://127.0.0.1:{self.proxy_port}{root}")
        self.assertIn(f"{cookie}; Path={root}; HttpOnly", headers["Set-Cookie"])

        status, _, page = await threads.deferToThread(request, self.proxy_port, root, cookie)
        self.assertEqual(status, 200)
        self.assertIn(f"password {password};".encode(), page)
        self.assertIn(b"cookie None", page)  # the token never reaches the app

        status, _, body = await threads.deferToThread(
            request, self.proxy_port, root + "big", cookie)
        self.assertEqual((status, len(body)), (200, len(PAYLOAD)))
        self.assertTrue(body == PAYLOAD)

        echoed = await threads.deferToThread(
            websocket_echo, self.proxy_port, root + "ws", cookie, 1000)
        self.assertEqual(echoed, 1000)

        results = await gatherResults([
            threads.deferToThread(request, self.proxy_port, root, cookie)
            for _ in range(50)])
        self.assertEqual([status for status, _, _ in results], [200] * 50)

        # A wrong token: 403, and the app sees nothing of it.
        status, _, seen = await threads.deferToThread(
            request, self.proxy_port, root + "count", cookie)
        wrong = f"dssr_job_{ref['number']}={ref['jobid']}.{'x' * 43}"
        for bad in (wrong, None):
            status, _, _ = await threads.deferToThread(
                request, self.proxy_port, root + "count", bad)
            self.assertEqual(status, 403)
        status, _, seen_after = await threads.deferToThread(
            request, self.proxy_port, root + "count", cookie)
        self.assertEqual(int(seen_after), int(seen) + 1)

        # A second DSSR (another replica, nothing shared in memory) serves it too.
        second = ProxyFactory(parse_jobs_domain(self.settings.jobs_domain),
                              self.connector_replica(), reactor, ProxyLimits(),
                              access_tokens(self.settings))
        listening = reactor.listenTCP(0, second, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        status, _, page = await threads.deferToThread(
            request, listening.getHost().port, root, cookie)
        self.assertEqual(status, 200)

        # The job ends: the proxy answers at once, and holds no stream.
        await self.answer("/terminate", ref)
        await self.wait_for(ref, None)
        started = time.monotonic()
        status, _, _ = await threads.deferToThread(request, self.proxy_port, root, cookie)
        self.assertIn(status, (404, 502))
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(self.open_streams(), 0)
        info = await self.answer(f"/request/{ref['name']}/{ref['number']}/{ref['jobid']}/info")
        self.assertEqual(info["url"], "")

    def connector_replica(self):
        connector = slurm_connector(self.settings, reactor)
        connector.service.startService()
        self.addCleanup(connector.service.stopService)
        return connector

    @deferred_test
    async def test_two_apps_side_by_side_on_one_node(self):
        (one, url_one, _), (two, url_two, _) = await gatherResults([
            ensureDeferred(self.start_app("one")), ensureDeferred(self.start_app("two"))])
        for ref, url in ((one, url_one), (two, url_two)):
            status, _, page = await threads.deferToThread(
                request, self.proxy_port, urlsplit(url).path, self.cookie(ref, url))
            self.assertEqual(status, 200, page)
        # One job's token does not open the other (it names the other job: not found).
        status, _, _ = await threads.deferToThread(
            request, self.proxy_port, urlsplit(url_two).path,
            self.cookie(one, url_one).replace(str(one["number"]), str(two["number"]), 1))
        self.assertIn(status, (403, 404))

    @deferred_test
    async def test_a_job_rewriting_its_app_record_reaches_nothing_else(self):
        # The job points its record at the login node's sshd: DSSR believes only a
        # node the job was given and a port DSSR chose for it.
        port = self.environment["JARVICE_SLURM_CLUSTER_PORT"]
        body = (f"echo {APP} | base64 -d > \"$HOME/echo_app_$$.py\"\n"
                "python3 \"$HOME/echo_app_$$.py\" &\n"
                "until [ -s \"$DSSR_APP_RECORD\" ]; do sleep 0.2; done\n"
                f"printf 'NODE=127.0.0.1\\nPORT={port}\\nPASSWORD=x\\n' > \"$DSSR_APP_RECORD\"\n"
                "echo rewritten\nwait\n")
        ref = await self.submit_app("rewritten", body)
        await self.wait_for_output(ref, "rewritten")
        info = await self.answer(f"/request/{ref['name']}/{ref['number']}/{ref['jobid']}/info")
        self.assertEqual(info["url"], "")
        token = access_tokens(self.settings).issue(ref["jobid"], ref["number"])
        status, _, body = await threads.deferToThread(
            request, self.proxy_port, f"/job{ref['number']}/",
            f"dssr_job_{ref['number']}={token}")
        self.assertEqual(status, 404, body)
        self.assertNotIn(b"SSH-", body)
        self.assertEqual(self.open_streams(), 0)
