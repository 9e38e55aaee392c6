"""DSSR's proxy over a forwarded SSH stream vs OpenSSH's own ``ssh -L``, to one app.

Starts a private sshd on 127.0.0.1 (``tests/integration/sshd.py``) and the echo app
(``tests/integration/echo_app.py``, Python's standard library), then measures, in a
separate client process, each way in: throughput of a large download (best of
``--runs``), first-byte latency of ``GET /`` at each concurrency, and the round trip
of a WebSocket message to the app's ``/ws`` echo (``--ws-messages`` messages of
``--ws-size`` bytes, one at a time, over one connection opened with the job's cookie)::

    python -m bench.proxy_bench --size 100 -c 1,32 -n 400
"""

import argparse
import base64
import http.client
import json
import os
import pwd
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater, react
from twisted.internet.utils import getProcessOutput

from dssr import compose
from dssr.jobs import InteractiveApp
from dssr.proxy.server import ProxyFactory, ProxyLimits
from dssr.proxy.tokens import AccessTokens
from dssr.proxy.urls import parse_jobs_domain
from dssr.settings import load
from tests.integration import echo_app
from tests.integration.sshd import SSHServer, free_port, generate_key

TOKENS = AccessTokens(b"b" * 32)
COOKIE = f"dssr_job_1={TOKENS.issue('1', 1)}"  # Slurm job 1, Jarvice job number 1


class OneApp:
    """The connector's lookup for the bench: job 1 is the app, through ``remote``."""

    def __init__(self, remote, port: int):
        self._endpoint = remote.tcp_endpoint("127.0.0.1", port)

    async def interactive_app(self, jobid, number):
        return InteractiveApp(self._endpoint) if (jobid, number) == ("1", 1) else None


# -- the client (a separate process: it must not share DSSR's core) --------------------


def first_byte(port: int, prefix: str) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    connection.request("GET", prefix, headers={"Cookie": COOKIE})
    response = connection.getresponse()
    response.read(1)
    took = time.perf_counter() - started
    response.read()
    connection.close()
    return took


def download(port: int, prefix: str) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request("GET", prefix + "big", headers={"Cookie": COOKIE})
    response = connection.getresponse()
    size = 0
    while chunk := response.read(1 << 20):
        size += len(chunk)
    took = time.perf_counter() - started
    connection.close()
    return size / took


def websocket_round_trips(port: int, prefix: str, count: int, size: int) -> list[float]:
    """Open a WebSocket to the app's ``/ws`` (with the job's cookie), send ``count``
    messages of ``size`` bytes one at a time, text and binary in turn, each waiting for
    its echo, then close: each message's round trip, in seconds."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(echo_app.upgrade_request(prefix + "ws", f"127.0.0.1:{port}", key,
                                              {"Cookie": COOKIE}))
        with sock.makefile("rb") as stream:
            status = stream.readline()
            if b" 101 " not in status:
                raise RuntimeError(f"no WebSocket: {status!r}")
            head = b"".join(iter(stream.readline, b"\r\n"))
            if f"Sec-WebSocket-Accept: {echo_app.accept_key(key)}\r\n".encode() not in head:
                raise RuntimeError(f"a wrong or no Sec-WebSocket-Accept: {head!r}")
            messages = [(1 + n % 2, (b"%08d" % n * (size // 8 + 1))[:size])
                        for n in range(count)]
            frames = [echo_app.frame(opcode, data, os.urandom(4)) for opcode, data in messages]
            times = []
            for message, encoded in zip(messages, frames, strict=True):
                started = time.perf_counter()
                sock.sendall(encoded)
                echoed = echo_app.read_frame(stream, masked=False)
                times.append(time.perf_counter() - started)
                if echoed != message:
                    raise RuntimeError(f"sent {message!r}, got back {echoed!r}")
            sock.sendall(echo_app.frame(8, b"\x03\xe8", os.urandom(4)))  # 1000: normal
            if echo_app.read_frame(stream, masked=False) != (8, b"\x03\xe8"):
                raise RuntimeError("the app did not return the close frame")
    return times


def client(port: int, prefix: str, runs: int, concurrencies: list[int], count: int,
           ws_messages: int, ws_size: int) -> dict:
    figures = {"MB/s": max(download(port, prefix) for _ in range(runs)) / 1e6}
    for concurrency in concurrencies:
        with ThreadPoolExecutor(concurrency) as pool:
            times = list(pool.map(lambda _: first_byte(port, prefix), range(count)))
        cuts = statistics.quantiles(times, n=100)
        figures[f"p50 ms C={concurrency}"] = cuts[49] * 1000
        figures[f"p99 ms C={concurrency}"] = cuts[98] * 1000
    if ws_messages:
        cuts = statistics.quantiles(websocket_round_trips(port, prefix, ws_messages, ws_size),
                                    n=100)
        figures["WS p50 ms"] = cuts[49] * 1000
        figures["WS p99 ms"] = cuts[98] * 1000
    return figures


# -- the bench ---------------------------------------------------------------------------


async def wait_listening(reactor, port: int) -> None:
    for _ in range(500):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        await deferLater(reactor, 0.02, lambda: None)
    raise RuntimeError(f"nothing listens on {port}")


async def measure(reactor, port: int, prefix: str, options) -> dict:
    out = await getProcessOutput(sys.executable, [
        "-m", "bench.proxy_bench", "--client", str(port), prefix, "--runs", str(options.runs),
        "-c", options.concurrency, "-n", str(options.requests),
        "--ws-messages", str(options.ws_messages), "--ws-size", str(options.ws_size)],
        env=os.environ, path=os.getcwd())
    return json.loads(out)


async def bench(reactor, options) -> None:
    with tempfile.TemporaryDirectory() as directory:
        server = SSHServer(reactor, directory)
        private, public = generate_key()
        server.authorize(public)
        key_file = os.path.join(directory, "client_key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as key:
            key.write(private)
        known_hosts = os.path.join(directory, "known_hosts")
        with open(known_hosts, "wb") as known:
            known.write(server.known_hosts_line())
        await server.start()
        app_port = free_port()
        forward_port = free_port()
        while forward_port == app_port:  # free_port may hand out one port twice
            forward_port = free_port()
        app = subprocess.Popen(
            [sys.executable, echo_app.__file__],
            env={**os.environ, "JARVICE_SERVICE_PORT": str(app_port),
                 "ECHO_APP_BIG": str(options.size * 1024 * 1024)})
        user = pwd.getpwuid(os.geteuid()).pw_name
        tunnel = subprocess.Popen(
            ["ssh", "-N", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-i", key_file, "-p", str(server.port),
             "-L", f"{forward_port}:127.0.0.1:{app_port}", f"{user}@127.0.0.1"])
        settings = load(cli={"cluster_addr": server.host, "cluster_port": server.port,
                             "ssh_user": user, "ssh_pkey": private.decode(),
                             "ssh_known_hosts": known_hosts})
        remote = compose.ssh_remote(settings, reactor)
        remote.startService()
        proxy = ProxyFactory(parse_jobs_domain("http://127.0.0.1/job$"),
                             OneApp(remote, app_port), reactor, ProxyLimits(), TOKENS)
        listening = reactor.listenTCP(0, proxy, interface="127.0.0.1")
        try:
            for port in (app_port, forward_port):
                await wait_listening(reactor, port)
            await remote.run(["true"])  # logged in before the figures start
            results = {
                "ssh -L": await measure(reactor, forward_port, "/", options),
                "DSSR proxy": await measure(reactor, listening.getHost().port, "/job1/",
                                            options)}
        finally:
            await listening.stopListening()
            await remote.stopService()
            tunnel.terminate()
            app.terminate()
            await server.stop()
    names = list(results["ssh -L"])
    print(f"{'':<12}" + "".join(f"{name:>14}" for name in names)
          + "   (first byte of GET /: p50, p99 at C concurrent requests;"
          + f" WS: a {options.ws_size}-byte message's echo, p50, p99 of {options.ws_messages})")
    for way, figures in results.items():
        print(f"{way:<12}" + "".join(f"{figures[name]:>14.2f}" for name in names))
    ratio = results["DSSR proxy"]["MB/s"] / results["ssh -L"]["MB/s"]
    print(f"throughput: DSSR proxy at {ratio:.0%} of ssh -L")
    print(json.dumps(results))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="download size, MiB")
    parser.add_argument("--runs", type=int, default=3, help="downloads (the best counts)")
    parser.add_argument("-c", "--concurrency", default="1,32")
    parser.add_argument("-n", "--requests", type=int, default=400,
                        help="first-byte requests per concurrency")
    parser.add_argument("--ws-messages", type=int, default=1000,
                        help="WebSocket messages, one at a time (0: none)")
    parser.add_argument("--ws-size", type=int, default=64, help="WebSocket message, bytes")
    parser.add_argument("--client", nargs=2, metavar=("PORT", "PREFIX"),
                        help=argparse.SUPPRESS)  # the client process
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.client:
        port, prefix = arguments.client
        print(json.dumps(client(int(port), prefix, arguments.runs,
                                [int(c) for c in arguments.concurrency.split(",")],
                                arguments.requests, arguments.ws_messages,
                                arguments.ws_size)))
    else:
        react(lambda reactor: ensureDeferred(bench(reactor, arguments)))
