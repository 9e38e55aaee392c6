"""Bad input to the proxy listener, before and after a valid token: every answer is a
plain-text 4xx naming what was wrong, nothing from the request reaches a response
header, and no request reaches an app without its job's valid token."""

import time

from tests.abuse.dssr import read_answer
from tests.abuse.proxy import NUMBER, TOKENS, ProxyCase, get

CHUNKED = b"POST /job7/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
BAD = [
    (CHUNKED + b"-1\r\nXY", 400), (CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    (CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n", 400), (CHUNKED + b"5_0\r\n", 400),
    (CHUNKED + b" 5\r\nhello\r\n0\r\n\r\n", 400),
    ("POST /job7/ HTTP/1.1\r\nContent-Length: ²\r\n\r\n".encode(), 400),
    (b"POST /job7/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST /job7/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    (b"POST /job7/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET /job7/ HTTP/1.1\nHost: 127.0.0.1\n\n", 400),
    (b"GET /job7/ HTTP/1.1\r\nHost: 127.0.0.1\rX: y\r\n\r\n", 400),
    (b"GET http://127.0.0.1/job7/ HTTP/1.1\r\n\r\n", 400),
    (b"GET /job7/\x01 HTTP/1.1\r\n\r\n", 400),
    (b"GET /job7/ HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
    (b"GET /job7/ HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    (b"GET /job7/" + b"a" * 40000, 431),
]


class FramingTests(ProxyCase):
    def test_one_request_cannot_freeze_the_process(self):
        # Was: a chunk size of -1 made the framer loop forever in the reactor: the
        # process answered nothing more, API included.
        for raw, status in BAD:
            started = time.monotonic()
            answer = self.proxy_send(raw)
            self.assertEqual(answer.status, status, raw[:80])
            self.assertEqual(answer.headers.get("Content-Type"), "text/plain; charset=utf-8")
            self.assertLess(time.monotonic() - started, 5)
        self.assertLess(self.dssr.worst_live_ms(3), 500)


class TokenTests(ProxyCase):
    domain = "jobs.example.org"  # host-based: https://job-<number>.jobs.example.org/

    def test_redirects_go_to_the_jobs_own_origin(self):
        # Was: GET //evil.example/?dssr_token=<valid> answered Location: //evil.example/.
        token = TOKENS.issue(self.submit(), NUMBER)
        host = f"job-{NUMBER}.jobs.example.org"
        for path in ("//evil.example/", "/\\evil.example/", "/a?x=1"):
            answer = self.proxy_send(get(f"{path}{'&' if '?' in path else '?'}"
                                         f"dssr_token={token}", host=host))
            self.assertEqual(answer.status, 302)
            self.assertEqual(answer.headers["Location"], f"https://{host}{path}")
            self.assertEqual(answer.headers["Set-Cookie"],
                             f"dssr_job_{NUMBER}={token}; Path=/; HttpOnly; SameSite=Lax; "
                             f"Secure")

    def test_no_line_feed_reaches_a_header(self):
        # Was: ?dssr_token=<valid>%0A was accepted and its LF cut Set-Cookie short.
        token = TOKENS.issue(self.submit(), NUMBER)
        host = f"job-{NUMBER}.jobs.example.org"
        for suffix in ("%0A", "%0D%0ASet-Cookie:%20x=y", "%00"):
            answer = self.proxy_send(get(f"/?dssr_token={token}{suffix}", host=host))
            self.assertEqual(answer.status, 403)
            self.assertNotIn("Set-Cookie", answer.headers)
        answer = self.proxy_send(f"GET /\n?dssr_token={token} HTTP/1.1\r\nHost: {host}"
                                 f"\r\n\r\n".encode())
        self.assertEqual(answer.status, 400)
        self.assertNotIn("Location", answer.headers)

    def test_unauthenticated_answers_say_nothing_about_jobs(self):
        # Was: 403 for a job number running an app, 404 for any other.
        self.submit()
        answers = set()
        for number in (NUMBER, NUMBER + 1, 99999):
            for cookie in ("", f"{NUMBER}00.{'x' * 43}"):
                raw = get("/", host=f"job-{number}.jobs.example.org").replace(
                    b"\r\n\r\n", f"\r\nCookie: dssr_job_{number}={cookie}\r\n\r\n".encode())
                answer = self.proxy_send(raw)
                answers.add((answer.status, answer.body))
        self.assertEqual(answers, {(403, b"no valid access token for this address\n")})


class KeepAliveTests(ProxyCase):
    running = 4.0

    def test_each_request_is_checked(self):
        # Was: a later keep-alive request's ?dssr_token= reached the app unchanged.
        token = TOKENS.issue(self.submit(), NUMBER)
        with self.proxy_connect() as sock:
            sock.sendall(get("/job7/first", token, close=False))
            first = read_answer(sock)
            self.assertEqual(first.status, 200)
            self.assertIn(b"/job7/first", first.body)
            sock.sendall(get(f"/job7/second?dssr_token={token}", close=False))
            second = read_answer(sock)
            self.assertEqual(second.status, 302)
            self.assertEqual(second.headers["Location"],
                             f"http://127.0.0.1:{self.proxy_port}/job7/second")

    def test_streams_close_when_the_job_ends(self):
        # Was: a connection opened while the job ran went on working after it ended.
        token = TOKENS.issue(self.submit(), NUMBER)
        with self.proxy_connect() as sock:
            sock.sendall(get("/job7/", token, close=False))
            self.assertEqual(read_answer(sock).status, 200)
            time.sleep(4 + 5 + 1)  # the job's run, the recheck interval, a slow machine
            try:
                sock.sendall(get("/job7/", token, close=False))
                self.assertEqual(sock.recv(1024), b"")
            except ConnectionResetError:
                pass  # closed: what the test wants
