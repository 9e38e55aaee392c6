"""A real ``twistd -n dssr`` with its proxy listener serving the dummy connector's
pretend app, and a running interactive job to aim at."""

import json
import socket
import subprocess

from dssr.proxy.tokens import AccessTokens, derive_key
from tests.abuse.dssr import SERVER_KEY, AbuseCase, Answer
from tests.abuse.test_before_auth import post
from tests.integration.sshd import free_port
from tests.upstream import form_body, largest_submit

TOKENS = AccessTokens(derive_key(SERVER_KEY))  # the tokens that DSSR issues and checks
NUMBER = 7


def proxied(port: int, domain: str = "", running: float = 600.0) -> dict[str, str]:
    """Settings of a dummy DSSR whose interactive jobs run ``running`` seconds and are
    served by a proxy on ``port`` at ``domain`` (default: path-based on the port)."""
    return {"JARVICE_SCHED_SERVER_KEY": SERVER_KEY,
            "JARVICE_DUMMY_JOBS_ARE_INTERACTIVE": "true",
            "JARVICE_DUMMY_JOB_QUEUED_TIME": "0",
            "JARVICE_DUMMY_JOB_RUNNING_TIME": str(running),
            "JARVICE_DUMMY_JOB_FAILING_PERCENT": "0",
            "JARVICE_JOBS_DOMAIN": domain or f"http://127.0.0.1:{port}/job$",
            "DSSR_PROXY_LISTEN": f"tcp:{port}:interface=127.0.0.1"}


class ProxyCase(AbuseCase):
    """An ``AbuseCase`` whose DSSR also has a proxy listener (``proxy_port``)."""

    domain = ""
    running = 600.0
    extra: dict[str, str] = {}

    def setUp(self):
        self.proxy_port = free_port()
        self.settings = {**proxied(self.proxy_port, self.domain, self.running), **self.extra}
        super().setUp()

    def submit(self, number: int = NUMBER) -> str:
        """Submit an interactive dummy job (running at once); its job id."""
        args = {**largest_submit(), "name": f"job-{number}", "number": number}
        answer = self.dssr.send(post(b"/submit", form_body(args), auth=True))
        self.assertEqual(answer.status, 200, answer.body)
        return json.loads(answer.body)[0]

    def proxy_connect(self, source: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.proxy_port), timeout=timeout,
                                        source_address=(source, 0))

    def proxy_send(self, raw: bytes, source: str = "127.0.0.1") -> Answer:
        """Send ``raw`` to the proxy on a fresh connection and read the answer."""
        with self.proxy_connect(source) as sock:
            try:
                sock.sendall(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return self.dssr.read(sock)

    def backlog(self, port: int) -> int:
        """The listen backlog of this host's socket on ``port`` (``ss``'s Send-Q)."""
        lines = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                               text=True, check=True).stdout.split("\n")
        return int(lines[0].split()[2])


def get(path: str, cookie: str = "", host: str = "127.0.0.1", close: bool = True) -> bytes:
    """A GET for the proxy, with the job's token cookie when ``cookie`` is a token."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if cookie:
        lines.append(f"Cookie: dssr_job_{NUMBER}={cookie}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()

