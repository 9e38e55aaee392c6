"""Real interactive apps on the rig, used by headless Chromium through DSSR's proxy.

A noVNC desktop (Xvfb, xterm, x11vnc, websockify) and a Jupyter notebook run as
interactive Slurm jobs submitted through DSSR's API (``browser_apps``); Chromium opens
the URL ``/request/.../info`` answers (the proxy moves the token into a cookie) and
uses the app within the job's origin: noVNC must connect over its WebSocket and draw
the desktop into its canvas (pixels read back in the page), and a notebook cell must
run on the node (its Slurm job id and host name) with its output back in the page.

Each class is one jobs domain, host-based (``job-$.jobs.test``) or path-based
(``jobs.test:PORT/job$``), over plain HTTP or TLS (a self-signed ``*.jobs.test``); it
keeps one ``twistd dssr``, one Chromium and both apps for all its tests.
``DSSR_BROWSER_SCREENSHOTS=DIR`` also saves each app's screenshot there (the README's
come from it); they are always in the class's directory under ``_trial_temp``.
"""

import atexit
import os
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from twisted.trial.unittest import SynchronousTestCase

from tests.integration import browser_apps
from tests.integration.browser import (
    DSSRServer,
    chromium,
    close_driver,
    missing_pieces,
    page_text,
)
from tests.integration.rig import rig_environment
from tests.integration.sshd import free_port
from tests.integration.test_proxy_process import self_signed

DOMAIN = "jobs.test"
# A job's output once it ended (the batch script's verdicts, the apps' own complaint).
ENDED = ("browser app:", "JARVICE Job failed", "JARVICE_CMD_SUCCESS")

# What noVNC shows: connected (its UI marks the page), and the canvas's size, how many
# colours it holds (sampled), and the colour of a pixel near its bottom right corner.
NOVNC_PROBE = """
const canvas = document.querySelector('#noVNC_container canvas');
if (!canvas || !document.documentElement.classList.contains('noVNC_connected')) {
    return {connected: false, status: (document.getElementById('noVNC_status') || {}).innerText};
}
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
const colours = new Set();
for (let i = 0; i < data.length; i += 4 * 13) {
    colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
}
const at = 4 * ((canvas.height - 8) * canvas.width + canvas.width - 8);
return {connected: true, width: canvas.width, height: canvas.height, colours: colours.size,
        corner: [data[at], data[at + 1], data[at + 2]]};
"""

NOTEBOOK_READY = """
const notebook = window.Jupyter && Jupyter.notebook;
return !!(notebook && notebook.kernel && notebook.kernel.is_connected()
          && notebook.get_cells().length === 1);
"""
NOTEBOOK_OUTPUT = """
return Array.from(document.querySelectorAll('.output_area .output_subarea'),
                  node => node.innerText).join('\\n');
"""


@dataclass
class App:
    ref: dict
    url: str
    password: str


def wait(session, limit: float, what: str, probe, done=bool):
    """Poll ``probe()`` until ``done`` says its value is it (every 0.2 s, at most ``limit``
    seconds); on timeout a failure naming ``what``, the last value, and a screenshot."""
    deadline = time.monotonic() + limit
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            shot = session.screenshot(f"timeout-{time.monotonic_ns()}")
            raise AssertionError(
                f"waited {limit:g} s for {what}; last seen {value!r}; page "
                f"{session.driver.current_url!r}: {page_text(session.driver)[:300]!r} "
                f"(screenshot {shot})")
        time.sleep(0.2)


class BrowserSession:
    """For one test class: a DSSR process with its proxy, Chromium, and both apps."""

    def __init__(self, tls: bool, host_based: bool, directory: str):
        self.tls, self.host_based, self.directory = tls, host_based, directory
        self.scheme = "https" if tls else "http"
        self.error: str | None = None
        self.driver = None
        self.dssr: DSSRServer | None = None
        self.apps: dict[str, App] = {}

    def start(self, environment: dict[str, str]) -> None:
        self.port = free_port()
        listen = f"tcp:{self.port}:interface=127.0.0.1"
        if self.tls:
            certificate, key = self_signed(self.directory, DOMAIN)
            listen = (f"ssl:{self.port}:interface=127.0.0.1:privateKey={key}"
                      f":certKey={certificate}")
        domain = (f"{self.scheme}://job-$.{DOMAIN}:{self.port}" if self.host_based
                  else f"{self.scheme}://{DOMAIN}:{self.port}/job$")
        self.dssr = DSSRServer({**environment, "JARVICE_JOBS_DOMAIN": domain,
                                "DSSR_PROXY_LISTEN": listen}, self.directory)
        self.dssr.start()
        scripts = {"novnc": browser_apps.novnc_script, "jupyter": browser_apps.jupyter_script}
        for label, script in scripts.items():
            self.apps[label] = self.submit(label, script())
        self.driver = chromium(self.directory, DOMAIN)  # while the jobs start
        for label, app in self.apps.items():
            served = self.started(app.ref)
            if served is None:
                raise AssertionError(f"the {label} job {app.ref['jobid']} served no URL; its "
                                     f"output:\n{self.output(app.ref)}")
            self.apps[label] = served

    def submit(self, label: str, script: str) -> App:
        number = random.randrange(10**6, 10**7)
        name = f"br-{os.getpid()}-{label}-{number}"
        args = {"name": name, "number": number, "nodes": 1, "bearer": "",
                "hpc_script": {"singularity": script}}
        jobid, _ = self.dssr.answer("/submit", args)
        return App({"name": name, "number": number, "jobid": jobid}, "", "")

    def started(self, ref: dict, limit: float = 120) -> App | None:
        """The app once it listens (its URL and password from the API); None when its
        job ended first or it did not listen within ``limit`` seconds."""
        base = f"/request/{ref['name']}/{ref['number']}/{ref['jobid']}"
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            info = self.dssr.answer(base + "/info")
            if info["url"]:
                return App(ref, info["url"], self.dssr.answer(base + "/connect")["password"])
            if any(mark in self.output(ref) for mark in ENDED):
                return None
            time.sleep(0.5)
        return None

    def output(self, ref: dict) -> str:
        code, tail = self.dssr.call(f"/request/{ref['name']}/{ref['number']}/{ref['jobid']}"
                                    "/tail", {"qs": {"lines": ["40"]}})
        return tail.decode("utf-8", "replace") if code == 200 else f"<tail: {code}>"

    def screenshot(self, name: str) -> str:
        path = os.path.join(self.directory, f"{name}.png")
        self.driver.save_screenshot(path)
        wanted = os.environ.get("DSSR_BROWSER_SCREENSHOTS")
        if wanted:
            os.makedirs(wanted, exist_ok=True)
            shutil.copy(path, wanted)
        return path

    def close(self) -> None:
        for app in self.apps.values():
            try:
                ended = self.dssr.call("/terminate", app.ref)[0] == 200
            except OSError:
                ended = False
            if not ended:  # this DSSR died: cancel it on the rig (this host) directly
                subprocess.run(["scancel", app.ref["jobid"]], check=False)
        if self.driver is not None:
            close_driver(self.driver)
        if self.dssr is not None:
            self.dssr.stop()


_SESSIONS: dict[type, BrowserSession] = {}


def _close(kind: type) -> None:
    session = _SESSIONS.pop(kind, None)
    if session is not None:
        session.close()


atexit.register(lambda: [_close(kind) for kind in list(_SESSIONS)])


class BrowserTests:
    """The tests, for a ``SynchronousTestCase`` saying which jobs domain it uses."""

    alone = "a class's browser and jobs live as long as its process"

    tls = False
    host_based = True

    def setUp(self):
        environment = rig_environment()  # no rig: a skip, as for every rig test
        problem = missing_pieces()  # with one (CI), a missing browser or app fails
        if problem:
            self.fail(problem)
        kind = type(self)
        # The session ends after the class's last test (trial runs them by name), or at
        # exit when only some of them run.
        if self._testMethodName == max(n for n in dir(kind) if n.startswith("test_")):
            self.addCleanup(_close, kind)
        self.session = _SESSIONS.get(kind)
        if self.session is None:
            directory = os.path.abspath(self.mktemp())
            os.makedirs(directory)
            self.session = _SESSIONS[kind] = BrowserSession(self.tls, self.host_based,
                                                            directory)
            try:
                self.session.start(environment)
            except Exception as error:
                self.session.error = f"{type(error).__name__}: {error}"
                raise
        if self.session.error:
            self.fail(f"the class's apps did not start: {self.session.error}")
        self.driver = self.session.driver

    def label(self) -> str:
        return type(self).__name__

    def open(self, app: App) -> str:
        """Open the URL upstream hands out; the job's root (the token now a cookie)."""
        number = app.ref["number"]
        parts = urlsplit(app.url)
        root = (f"{self.session.scheme}://job-{number}.{DOMAIN}:{self.session.port}/"
                if self.host_based
                else f"{self.session.scheme}://{DOMAIN}:{self.session.port}/job{number}/")
        self.assertEqual(f"{parts.scheme}://{parts.netloc}{parts.path}", root)
        token = parts.query.partition("dssr_token=")[2]
        self.driver.get(app.url)
        self.assertTrue(self.driver.current_url.startswith(root), self.driver.current_url)
        self.assertNotIn("dssr_token", self.driver.current_url)
        cookie = self.driver.get_cookie(f"dssr_job_{number}")
        self.assertIsNotNone(cookie, self.driver.get_cookies())
        self.assertEqual((cookie["value"], cookie["httpOnly"], cookie["secure"]),
                         (token, True, self.tls))
        return root

    def test_novnc_desktop(self):
        app = self.session.apps["novnc"]
        root = self.open(app)
        query = urlencode({"autoconnect": "true", "reconnect": "false", "resize": "scale",
                           "path": urlsplit(root).path.lstrip("/") + "websockify",
                           "password": app.password})
        self.driver.get(f"{root}vnc.html?{query}")
        # Drawn: the root window's colour, and an xterm's text on it (the frame may
        # arrive in pieces, so both are awaited).
        seen = wait(self.session, 60, "noVNC connected, the desktop drawn in its canvas",
                    lambda: self.driver.execute_script(NOVNC_PROBE),
                    lambda seen: (seen["connected"] and seen["colours"] >= 3
                                  and tuple(seen["corner"]) == browser_apps.ROOT_COLOUR))
        self.assertEqual((seen["width"], seen["height"]), browser_apps.DESKTOP)
        self.session.screenshot(f"novnc-{self.label()}")

    def test_jupyter_notebook(self):
        app = self.session.apps["jupyter"]
        root = self.open(app)
        self.driver.get(f"{root}notebooks/{browser_apps.NOTEBOOK}?token={app.password}")
        wait(self.session, 60, "the notebook with its kernel connected",
             lambda: self.driver.execute_script(NOTEBOOK_READY))
        self.assertEqual(self.driver.execute_script(NOTEBOOK_OUTPUT), "")
        self.driver.find_element(
            "css selector", 'button[data-jupyter-action$=":run-cell-and-select-next"]').click()
        expected = (f"job {app.ref['jobid']} on {socket.gethostname()}: "
                    f"{browser_apps.CELL_VALUE}")
        output = wait(self.session, 60, f"the cell's output {expected!r}",
                      lambda: self.driver.execute_script(NOTEBOOK_OUTPUT),
                      lambda text: text.strip() != "")
        self.assertEqual(output.strip(), expected)
        self.session.screenshot(f"jupyter-{self.label()}")


class HostBasedHTTPTests(BrowserTests, SynchronousTestCase):
    tls, host_based = False, True


class HostBasedTLSTests(BrowserTests, SynchronousTestCase):
    tls, host_based = True, True


class PathBasedHTTPTests(BrowserTests, SynchronousTestCase):
    tls, host_based = False, False


class PathBasedTLSTests(BrowserTests, SynchronousTestCase):
    tls, host_based = True, False
