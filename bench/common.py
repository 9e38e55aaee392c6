"""Shared parts of the HTTP benchmarks: a lean keep-alive client, jobs, figures.

The client is plain sockets and a selector, with every request encoded once up front,
so one process drives many connections for a few per cent of a core; the benches
add processes on top (``--procs``) and report the client's CPU next to the server's.
Nothing here imports Twisted: the load generator should cost as little as possible.
"""

import argparse
import base64
import json
import os
import re
import selectors
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

TIMEOUT = 60.0
_METRIC = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")


@dataclass(frozen=True)
class Target:
    """Where DSSR listens, and the Basic credential to send (if any)."""

    host: str
    port: int
    authorization: str = ""

    @classmethod
    def parse(cls, base: str, auth: str = "") -> "Target":
        """From a base URL (``http://127.0.0.1:5150``) and ``user:password``."""
        parts = urlsplit(base)
        token = base64.b64encode(auth.encode()).decode() if auth else ""
        return cls(parts.hostname or "127.0.0.1", parts.port or 80,
                   f"Basic {token}" if token else "")

    def request(self, path: str, args: dict | None = None) -> bytes:
        """One encoded keep-alive POST of ``args`` as the ``args`` form field."""
        body = f"args={quote(json.dumps(args))}".encode() if args is not None else b""
        auth = f"Authorization: {self.authorization}\r\n" if self.authorization else ""
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    def call(self, path: str, args: dict | None = None) -> tuple[int, bytes]:
        """One request on a fresh connection (for setup, metrics and cleanup)."""
        ((_, code, body, _),) = drive(self, [(path, self.request(path, args))], 1)
        return code, body

    def json(self, path: str, args: dict | None = None):
        code, body = self.call(path, args)
        if code != 200:
            raise RuntimeError(f"{path} answered {code}: {body[:200]!r}")
        return json.loads(body)


class _Response:
    """Incremental parser of one HTTP/1.1 response (Content-Length or chunked)."""

    def __init__(self):
        self.buffer = b""
        self.code = 0
        self.body = b""
        self._length: int | None = None
        self._chunked = False
        self._head_done = False

    def feed(self, data: bytes) -> bool:
        """Add received bytes; True once the whole response is in."""
        self.buffer += data
        if not self._head_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, self.buffer = self.buffer[:end].lower(), self.buffer[end + 4:]
            self.code = int(head[9:12])
            self._head_done = True
            self._chunked = b"transfer-encoding: chunked" in head
            match = re.search(rb"content-length: *(\d+)", head)
            self._length = int(match.group(1)) if match else None
        if self._chunked:
            return self._chunks()
        if self._length is None or len(self.buffer) < self._length:
            return False
        self.body = self.buffer[:self._length]
        return True

    def _chunks(self) -> bool:
        body, rest = [], self.buffer
        while True:
            line_end = rest.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(rest[:line_end].split(b";")[0], 16)
            if len(rest) < line_end + 2 + size + 2:
                return False
            if size == 0:
                self.body = b"".join(body)
                return True
            body.append(rest[line_end + 2:line_end + 2 + size])
            rest = rest[line_end + 4 + size:]


def _connect(target: Target) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def drive(target: Target, items: Iterable[tuple[str, bytes]], concurrency: int
          ) -> list[tuple[str, int, bytes, float]]:
    """Send every ``(label, request)`` over ``concurrency`` keep-alive connections.

    Returns ``(label, code, body, seconds)`` per request; a failed connection gives
    code 0 and the error's name as body, and is reopened.
    """
    pending: Iterator = iter(items)
    selector = selectors.DefaultSelector()
    results = []

    def start(sock):
        item = next(pending, None)
        if item is None:
            if sock:
                sock.close()
            return
        label, data = item
        try:
            sock = sock or _connect(target)
            started = time.perf_counter()
            sock.sendall(data)
        except OSError as error:
            results.append((label, 0, type(error).__name__.encode(), 0.0))
            if sock:
                sock.close()
            return start(None)
        selector.register(sock, selectors.EVENT_READ, (label, started, _Response()))

    for _ in range(concurrency):
        start(None)
    while selector.get_map():
        ready = selector.select(TIMEOUT)
        if not ready:
            for key in list(selector.get_map().values()):
                selector.unregister(key.fileobj)
                key.fileobj.close()
                results.append((key.data[0], 0, b"timeout", TIMEOUT))
                start(None)
            continue
        for key, _ in ready:
            sock, (label, started, response) = key.fileobj, key.data
            try:
                data = sock.recv(65536)
            except OSError as error:
                data, failure = b"", type(error).__name__
            else:
                failure = "connection closed"
            if data and not response.feed(data):
                continue
            selector.unregister(sock)
            if data:
                results.append((label, response.code, response.body,
                                time.perf_counter() - started))
                start(sock)
            else:
                sock.close()
                results.append((label, 0, failure.encode(), 0.0))
                start(None)
    selector.close()
    return results


def error_kind(label: str, code: int, body: bytes) -> str | None:
    """Why an answer is wrong (``None`` if it is right) — the errors table's rows."""
    if code == 0:
        return body.decode()
    if code != 200:
        return f"HTTP {code}"
    if label == "/runstatus" and body.startswith(b"[null"):
        return "unknown job"
    return None


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_figures(seconds: list[float]) -> dict:
    """p50/p90/p95/p99/max in milliseconds."""
    return {name: round(percentile(seconds, fraction) * 1000, 2)
            for name, fraction in (("p50", .5), ("p90", .9), ("p95", .95), ("p99", .99),
                                   ("max", 1))}


def job_script(body: str, cores: int = 1) -> str:
    """A base64 upstream-style singularity script (as in tests/integration/rig.py)."""
    lines = ["JOBOBJ_APPDEFVERSION=2", "JOBOBJ_REPO=docker.io/library/ubuntu:22.04",
             "JOBOBJ_ARCH=amd64", f"JARVICE_CPU_CORES={cores}",
             'JOBOBJ_DEVICES=["exclusive=False"]', "JARVICE_CMD='true'",
             "{DOWNSTREAM_PARAMETERS}", body]
    return base64.b64encode("\n".join(lines).encode() + b"\n").decode()


def submit_args(name: str, seconds: int) -> dict:
    """``/submit`` args for a one-node, one-core job that sleeps ``seconds``."""
    return {"name": name, "number": 1, "nodes": 1,
            "hpc_script": {"singularity": job_script(f"sleep {seconds}")}}


def submit_jobs(target: Target, names: list[str], concurrency: int, seconds: int
                ) -> tuple[list[dict], list[tuple[str, int, bytes, float]]]:
    """Submit one sleeping job per name; the job refs made and every raw result."""
    items = [(name, target.request("/submit", submit_args(name, seconds))) for name in names]
    results = drive(target, items, concurrency)
    refs = [{"name": name, "number": 1, "jobid": json.loads(body)[0]}
            for name, code, body, _ in results if code == 200]
    return refs, results


def clean_up(target: Target, refs: list[dict], concurrency: int = 8) -> Counter:
    """``/terminate`` then ``/exitstatus`` every job; counts of answers by code."""
    codes: Counter = Counter()
    for path in ("/terminate", "/exitstatus"):
        items = [(path, target.request(path, ref)) for ref in refs]
        codes.update(f"{path} {code}" for _, code, _, _ in drive(target, items, concurrency))
    return codes


def scrape(target: Target) -> Counter:
    """DSSR's ``/metrics`` counters, summed over labels except ``endpoint``/``code``."""
    request = urllib.request.Request(f"http://{target.host}:{target.port}/metrics")
    if target.authorization:
        request.add_header("Authorization", target.authorization)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
        text = answer.read().decode()
    totals: Counter = Counter()
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match and match.group(1).endswith("_total"):
            name, labels, value = match.groups()
            keep = re.findall(r'(endpoint|code)="([^"]*)"', labels or "")
            key = name + "".join(f"{{{k}={v}}}" for k, v in keep)
            totals[key] += float(value)
    return totals


def per_pass(before: Counter, after: Counter, passes: int) -> dict:
    """Remote commands, SSH logins and snapshots DSSR made per poll pass."""
    names = {"commands": "dssr_remote_commands_total", "logins": "dssr_ssh_logins_total",
             "snapshots": "dssr_queue_snapshots_total",
             "snapshot_shared": "dssr_queue_snapshot_shared_total"}
    return {short: round((after[name] - before[name]) / max(passes, 1), 3)
            for short, name in names.items()}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS, KiB)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def concurrencies(text: str) -> list[int]:
    """``"1,8,32"`` as a list of ints."""
    return [int(part) for part in text.split(",") if part]


def base_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments every bench takes: DSSR's base URL and its credentials."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("base", help="DSSR's base URL, e.g. http://127.0.0.1:5150")
    parser.add_argument("--auth", default="", help="user:password (the server key)")
    return parser
