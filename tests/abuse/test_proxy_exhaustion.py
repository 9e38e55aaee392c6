"""Exhaustion through the proxy listener without credentials: connections piling up
past the file limit or trickling their heads, against the budget the API shares."""

import time

from tests.abuse.proxy import ProxyCase
from tests.abuse.test_exhaustion import attackers, close_all, held

SETTLE = 1.0  # seconds for DSSR to accept and read a burst of 600 connections' 18 MB
HEAD = b"GET /job7/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 30000  # < 32 KiB


class ProxyBudgetTests(ProxyCase):
    nofile = 512

    def test_proxy_connections_share_the_apis_budget(self):
        # Was: the proxy had no cap: at a file limit of 1024, 1010 proxy connections
        # with 60 KB partial heads made the API's accept fail (EMFILE) for ~30 s.
        upstream = self.dssr.connect()  # an API keep-alive connection from before
        self.dssr.reset_peak()
        first = self.open_all(attackers(600, 600))
        self.assertEqual(held(self, first), 256)  # the per-address cap
        second = self.open_all(attackers(200, 200, first=3))
        self.assertEqual(held(self, second), 384 - 256 - 1)  # the total cap, 1: upstream's
        refused = self.dssr.read(self.dssr.connect())
        self.assertEqual(refused.status, 503)  # the API counts against the same budget
        upstream.sendall(b"GET /live HTTP/1.1\r\nHost: dssr\r\n\r\n")
        self.assertEqual(self.dssr.read(upstream).status, 200)
        close_all(first + second)
        for _ in range(50):
            if self.dssr.request("GET", "/live").status == 200:
                break
            time.sleep(0.1)
        self.bounded("800 proxy connections with 30 KB partial heads, file limit 512",
                     self.dssr.worst_live_ms())
        upstream.close()

    def test_the_proxy_listens_with_the_apis_backlog(self):
        # Was: 50, so a burst of connections waited a second per SYN retry.
        self.assertEqual(self.backlog(self.proxy_port), 1024)
        self.assertEqual(self.backlog(self.dssr.port), 1024)

    def open_all(self, sources):
        connections = []
        for source in sources:
            sock = self.proxy_connect(source)
            try:
                sock.sendall(HEAD)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused at once: counted by ``held``
            connections.append(sock)
        time.sleep(SETTLE)
        return connections



class ProxyHeadDeadlineTests(ProxyCase):
    extra = {"DSSR_HEADER_TIMEOUT": "2"}

    def test_trickled_heads_are_cut_at_the_deadline(self):
        # Was: every byte restarted a 300 s idle timer, so a trickled head held its
        # connection (and its buffer) forever.
        started = time.monotonic()
        connections = [self.proxy_connect(source) for source in attackers(200, 100)]
        closed_at: dict[int, float] = {}
        while len(closed_at) < len(connections) and time.monotonic() - started < 10:
            for index, sock in enumerate(connections):
                if index in closed_at:
                    continue
                try:
                    sock.send(b"X")
                except OSError:
                    closed_at[index] = time.monotonic() - started
            time.sleep(0.2)
        self.assertEqual(len(closed_at), len(connections))
        self.assertLess(max(closed_at.values()), 2 + 5)  # the deadline, plus a slow machine
        close_all(connections)
