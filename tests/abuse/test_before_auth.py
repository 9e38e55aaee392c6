"""Work before authentication: no body is read, parsed or stored before DSSR has
decided, from the request head, that it wants it."""

import json
import time

from tests.abuse.dssr import BASIC, SERVER_KEY, AbuseCase, attackers, during

FORM = b"application/x-www-form-urlencoded"
MiB = 1024 * 1024


def post(path: bytes, body: bytes, content_type: bytes = FORM, auth: bool = False,
         length: int | None = None) -> bytes:
    """A raw POST; ``length`` overrides the announced Content-Length."""
    head = [b"POST " + path + b" HTTP/1.1", b"Host: dssr", b"Content-Type: " + content_type,
            b"Content-Length: %d" % (len(body) if length is None else length)]
    if auth:
        head.append(b"Authorization: " + BASIC.encode())
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class BeforeAuthenticationTests(AbuseCase):
    settings = {"JARVICE_SCHED_SERVER_KEY": SERVER_KEY}

    def test_unauthenticated_form_bodies(self):
        # Was: one 5 MiB body of a=%41%41... took RSS to 1.28 GB and blocked the
        # reactor 2.4 s before its 401; six in parallel made /live take 10.3 s.
        request = post(b"/submit", b"a=" + b"%41" * (5 * MiB // 3))
        sources = attackers(6, 1)
        self.dssr.reset_peak()
        answers, live = during(lambda worker: self.dssr.send(request, sources[worker]), 6,
                               self.dssr.worst_live_ms)
        for answer in answers:
            self.assertJSONError(answer, 401)
            self.assertEqual(answer.headers.get("Connection"), "close")
        self.bounded("6 parallel unauthenticated 5 MiB form bodies", live)

    def test_json_bodies_after_authentication(self):
        # Was: after auth, 16 MB of [[],[],...] took RSS from 61 to 488 MB and stalled
        # the reactor 5.4 s. Now over max_body it is a 413 from the head; under it the
        # shape check refuses it in milliseconds, as it does deep nesting, as JSON or
        # as a form field.
        json_type = b"application/json"
        under = MiB - 4096
        kinds = [
            (post(b"/submit", b"[" + b"[]," * (16_000_000 // 3) + b"[]]", json_type,
                  auth=True), 413),
            (post(b"/submit", b"[" + b"[]," * (under // 3) + b"[]]", json_type, auth=True),
             400),
            (post(b"/submit", b"[" * under, json_type, auth=True), 400),
            (post(b"/submit", b"args=" + b"%5B%5D%2C" * (under // 9), auth=True), 400),
        ]
        sources = attackers(4, 1)
        self.dssr.reset_peak()
        answers, live = during(
            lambda worker: (self.dssr.send(kinds[worker][0], sources[worker]),
                            kinds[worker][1]), 4, self.dssr.worst_live_ms)
        for answer, status in answers:
            self.assertJSONError(answer, status, "args")
        self.bounded("4 parallel authenticated JSON floods (16 MB; 1 MiB flat, deep, form)",
                     live)

    def test_huge_content_length_is_answered_from_the_head(self):
        # Was: Content-Length: 10^12 got no early 413.
        for auth, status in ((False, 401), (True, 413)):
            with self.dssr.connect() as sock:
                started = time.monotonic()
                sock.sendall(post(b"/submit", b"", auth=auth, length=10**12))
                answer = self.dssr.read(sock)
                self.assertLess(time.monotonic() - started, 5)  # not the request timeout
            self.assertJSONError(answer, status)

    def test_refusals_from_the_head(self):
        """Unknown path, wrong method, browser, credentials: decided before any body."""
        body = b"args=" + json.dumps({"name": "x"}).encode()
        cases = [
            (post(b"/nowhere", body), 404),
            (b"GET /submit?args=%7B%7D HTTP/1.1\r\nHost: dssr\r\n\r\n", 405),
            (post(b"/submit", body).replace(b"Host: dssr", b"Host: dssr\r\n"
                                            b"Origin: http://evil.example"), 403),
            (post(b"/submit", body).replace(b"Host: dssr", b"Host: dssr\r\n"
                                            b"Sec-Fetch-Site: cross-site"), 403),
            (post(b"/submit", body), 401),
            (b"GET /metrics HTTP/1.1\r\nHost: dssr\r\n\r\n", 401),
        ]
        for request, status in cases:
            answer = self.dssr.send(request)
            self.assertJSONError(answer, status)
            if status == 405:
                self.assertEqual(answer.headers.get("Allow"), "POST")
            if status == 401:
                self.assertEqual(answer.headers.get("WWW-Authenticate"), 'Basic realm="dssr"')
