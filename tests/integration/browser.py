"""Headless Chromium (through selenium and Debian's chromedriver) and a ``twistd dssr``
process for browser tests, both driven synchronously, outside the test's reactor.

Both live for a whole test class (trial has no class fixtures, and a reactor-managed
process would leave the reactor dirty between tests), so they are plain subprocesses.
What they need is checked first, and a missing piece is a failure naming the package:
CI installs everything (``.ci/run``), so a missing browser is never a skip.
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

from tests.integration.browser_apps import NOVNC_DIR
from tests.integration.process import CHECKOUT, twistd_argv
from tests.integration.sshd import free_port

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
except ImportError:  # reported by missing_pieces()
    webdriver = None

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# What must be on this machine, which is also the rig's node: (path, Debian package).
NEEDED = [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver"),
          (os.path.join(NOVNC_DIR, "vnc.html"), "novnc"), ("/usr/bin/websockify", "websockify"),
          ("/usr/bin/x11vnc", "x11vnc"), ("/usr/bin/Xvfb", "xvfb"), ("/usr/bin/xterm", "xterm"),
          ("/usr/bin/xsetroot", "x11-xserver-utils"),
          ("/usr/bin/jupyter-notebook", "jupyter-notebook")]


def missing_pieces() -> str | None:
    """What the browser tests lack on this machine, as a message; None when nothing."""
    packages = [package for path, package in NEEDED if not os.path.exists(path)]
    problems = []
    if packages:
        problems.append(f"apt-get install {' '.join(packages)}")
    if webdriver is None:
        problems.append("pip install selenium (the project's `test` extra)")
    return ("the browser tests need: " + "; ".join(problems) + " (.ci/run installs them)"
            if problems else None)


def page_text(driver) -> str:
    try:
        return driver.execute_script("return document.body ? document.body.innerText : ''")
    except WebDriverException as error:
        return f"<no page text: {error.msg}>"


def chromium(directory: str, resolve: str):
    """Headless Chromium for job addresses under ``resolve`` (``jobs.test``), all mapped to
    127.0.0.1 without DNS; self-signed certificates are accepted."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,860",
                     "--ignore-certificate-errors", "--no-first-run",
                     f"--user-data-dir={os.path.join(directory, 'chromium')}",
                     f"--host-resolver-rules=MAP *.{resolve} 127.0.0.1, MAP {resolve} 127.0.0.1"):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER,
                                      log_output=os.path.join(directory, "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


class DSSRServer:
    """A ``twistd -n dssr --connector slurm`` subprocess on the rig: its API, synchronously."""

    def __init__(self, environment: dict[str, str], directory: str):
        self.directory = directory
        self.log_path = os.path.join(directory, "dssr.log")
        self.environment = environment
        self.process: subprocess.Popen | None = None
        self.base = ""

    def start(self, limit: float = 30) -> None:
        port = free_port()
        argv = twistd_argv(self.directory, self.log_path, port)
        with open(os.path.join(self.directory, "dssr.out"), "wb") as output:
            self.process = subprocess.Popen(
                argv, cwd=self.directory, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.environment, "PYTHONPATH": CHECKOUT})
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.call("/ready", timeout=5)[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)
        raise AssertionError(f"DSSR never answered /ready within {limit:g} s:\n{self.tail()}")

    def call(self, path: str, args=None, timeout: float = 30) -> tuple[int, bytes]:
        """POST to the API as upstream does: (status, body)."""
        data = urlencode({"args": json.dumps(args)} if args is not None else {}).encode()
        try:
            with urllib.request.urlopen(self.base + path, data=data, timeout=timeout) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def answer(self, path: str, args=None):
        code, body = self.call(path, args)
        if code != 200:
            raise AssertionError(f"{path} answered {code}: {body[:300]!r}")
        return json.loads(body)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)

    def tail(self, lines: int = 40) -> str:
        text = ""
        for name in (self.log_path, os.path.join(self.directory, "dssr.out")):
            if os.path.exists(name):
                with open(name, errors="replace") as handle:
                    text += handle.read()
        return "\n".join(text.splitlines()[-lines:])


def close_driver(driver) -> None:
    try:
        driver.quit()
    except WebDriverException:
        pass  # a browser that died is closed already
