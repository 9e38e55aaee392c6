"""A real ``twistd -n dssr`` process, a plain-socket client, and what the attacks measure.

No reactor on the client side: the attacks are blocking and non-blocking sockets in
this process, so the DSSR process is the only Twisted program involved. Attackers
bind to 127.0.0.2 and up (all loopback on Linux) so a per-address cap shows, while
the ``/live`` probes come from 127.0.0.1.
"""

import base64
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.integration.sshd import free_port

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
SERVER_KEY = "upstream:key-canary-7f3a9c"
BASIC = "Basic " + base64.b64encode(SERVER_KEY.encode()).decode()
BEARER = "bearer-canary-51d0e2"
CANARIES = (SERVER_KEY, SERVER_KEY.split(":")[1], BASIC.split()[1], BEARER)
RSS_LIMIT_MB = 150
LIVE_LIMIT_MS = 50
FIGURES = "abuse-figures.txt"  # one line per attack, in trial's working directory


def raise_own_fd_limit() -> None:
    """Let this process hold thousands of attacking sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Answer:
    """A response as the client read it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


class DSSR:
    """One ``twistd -n dssr`` on 127.0.0.1 with ``settings`` (environment variables);
    ``nofile`` caps its file descriptors (soft and hard) from the start."""

    def __init__(self, directory: str, settings: dict[str, str], connector: str = "dummy",
                 nofile: int | None = None):
        self.directory = directory
        self.log_path = os.path.join(directory, "dssr.log")
        self.port = free_port()
        self._settings = settings
        self._connector = connector
        self._nofile = nofile
        self._process = None
        self.answers: list[Answer] = []  # everything read from it, for the canary check

    def start(self, timeout: float = 30.0) -> None:
        state = os.path.join(self.directory, "state")
        os.makedirs(state, exist_ok=True)
        argv = [TWISTD, "-n", "--pidfile=", f"--logfile={self.log_path}", "dssr",
                "--connector", self._connector, "--listen",
                f"tcp:{self.port}:interface=127.0.0.1", "--state-dir", state]
        environment = {**os.environ, **self._settings, "PYTHONPATH": CHECKOUT}
        limit = self._nofile

        def limit_files():
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self._process = subprocess.Popen(
            argv, env=environment, cwd=self.directory, preexec_fn=limit_files,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                if self.request("GET", "/live").status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"DSSR did not start:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    # -- what the process costs -----------------------------------------------------

    def _status(self, field: str) -> int:
        with open(f"/proc/{self._process.pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def reset_peak(self) -> None:
        """Start VmHWM (peak RSS) over from the current RSS."""
        with open(f"/proc/{self._process.pid}/clear_refs", "w") as handle:
            handle.write("5")

    def peak_rss_mb(self) -> float:
        return self._status("VmHWM") / 1024

    def deleted_files(self) -> list[str]:
        """Open files of the process that were unlinked (spooled temporary files)."""
        fds = f"/proc/{self._process.pid}/fd"
        targets = []
        for name in os.listdir(fds):
            try:
                targets.append(os.readlink(os.path.join(fds, name)))
            except OSError:
                pass
        return [target for target in targets if target.endswith("(deleted)")]

    # -- talking to it ----------------------------------------------------------------

    def connect(self, source: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout,
                                        source_address=(source, 0))

    def send(self, raw: bytes, source: str = "127.0.0.1", timeout: float = 10.0) -> Answer:
        """Send ``raw`` bytes as one request and read the answer."""
        with self.connect(source, timeout) as sock:
            try:
                sock.sendall(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the answer may already be there: DSSR refuses before the body
            return self.read(sock)

    def read(self, sock: socket.socket) -> Answer:
        """The next answer on ``sock``, kept for the canary check."""
        answer = read_answer(sock)
        self.answers.append(answer)
        return answer

    def request(self, method: str, path: str, body: bytes = b"", headers=None,
                auth: bool = False) -> Answer:
        """One well-formed request on a fresh connection."""
        lines = [f"{method} {path} HTTP/1.1", "Host: dssr", "Connection: close"]
        if auth:
            lines.append(f"Authorization: {BASIC}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        return self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def live_ms(self, source: str = "127.0.0.1") -> float:
        """Milliseconds for ``/live`` on a fresh connection, from the connect to the body."""
        started = time.perf_counter()
        answer = self.send(b"GET /live HTTP/1.1\r\nHost: dssr\r\nConnection: close\r\n\r\n",
                           source)
        elapsed = (time.perf_counter() - started) * 1000
        if (answer.status, answer.body) != (200, b'{"status":"OK"}'):
            raise AssertionError(f"/live answered {answer.status} {answer.body!r}")
        return elapsed

    def worst_live_ms(self, probes: int = 10, interval: float = 0.05) -> float:
        """The slowest of ``probes`` ``/live`` calls, ``interval`` seconds apart."""
        worst = 0.0
        for _ in range(probes):
            worst = max(worst, self.live_ms())
            time.sleep(interval)
        return worst


def during(attack, workers: int, probe):
    """Run ``attack(worker)`` over and over in ``workers`` threads while ``probe()``
    runs (each worker at least once); (every attack's result, the probe's result)."""
    stop = threading.Event()

    def repeat(worker):
        results = [attack(worker)]
        while not stop.is_set():
            results.append(attack(worker))
        return results

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(repeat, worker) for worker in range(workers)]
        try:
            measured = probe()
        finally:
            stop.set()
        return [result for future in futures for result in future.result()], measured


def read_answer(sock: socket.socket) -> Answer:
    """Parse one HTTP response from ``sock`` (Content-Length or chunked)."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return Answer(response.status, response.headers, body)


def attackers(count: int, per_address: int, first: int = 2) -> list[str]:
    """Source addresses for ``count`` connections, ``per_address`` from each of
    127.0.0.<first>, 127.0.0.<first + 1>..."""
    return [f"127.0.0.{first + index // per_address}" for index in range(count)]


def record(attack: str, rss_mb: float, live_ms: float) -> None:
    """Keep one attack's figures (appended to ``FIGURES``) for the report."""
    with open(FIGURES, "a") as handle:
        handle.write(f"{attack}: peak RSS {rss_mb:.1f} MB, /live worst {live_ms:.1f} ms\n")


class AbuseCase(SynchronousTestCase):
    """Starts a DSSR with ``settings`` for each test; afterwards checks that no answer
    and no log line holds a secret and that the log has no traceback."""

    alone = "bounds DSSR's /live under attack (50 ms): the machine must be quiet"

    settings: dict[str, str] = {}
    connector = "dummy"
    nofile: int | None = None

    def setUp(self):
        if os.environ.get("DSSR_TESTS_QUICK"):
            raise SkipTest("attacks on a real twistd run in tox's default env only")
        raise_own_fd_limit()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.dssr = DSSR(directory, self.settings, self.connector, self.nofile)
        self.dssr.start()
        self.addCleanup(self._stop_and_check)

    def _stop_and_check(self) -> None:
        self.dssr.stop()
        log = self.dssr.log()
        for canary in CANARIES:
            self.assertNotIn(canary, log)
            for answer in self.dssr.answers:
                self.assertNotIn(canary.encode(), answer.body)
                self.assertNotIn(canary, str(answer.headers))
        self.assertNotIn("Traceback", log)
        self.assertNotIn("Too many open files", log)
        self.assertNotIn("EMFILE", log)

    def bounded(self, attack: str, live_ms: float) -> None:
        """The issue's bounds for one attack: peak RSS since ``reset_peak`` and the
        worst ``/live`` seen while it went on; the figures are kept for the report."""
        rss = self.dssr.peak_rss_mb()
        record(attack, rss, live_ms)
        self.assertLess(rss, RSS_LIMIT_MB, attack)
        self.assertLess(live_ms, LIVE_LIMIT_MS, attack)

    def assertJSONError(self, answer: Answer, status: int, field: str | None = None) -> dict:
        """``answer`` is ``status`` with a JSON ``{"error", "field"?}`` body."""
        self.assertEqual(answer.status, status, answer.body)
        self.assertEqual(answer.headers.get("Content-Type"), "application/json")
        error = answer.json()
        self.assertIsInstance(error["error"], str)
        if field is not None:
            self.assertEqual(error.get("field"), field, error)
        return error
