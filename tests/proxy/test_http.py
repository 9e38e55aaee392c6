"""Request heads, cookies, and where each request ends."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.proxy.http import (
    BadRequest,
    Head,
    RequestFramer,
    cookie_value,
    parse_head,
    without_cookie,
)

GET = b"GET /a HTTP/1.1\r\nHost: h\r\nCookie: x=1; dssr_job_7=t; y=2\r\n\r\n"


def heads_and_bytes(items):
    return [item.target if isinstance(item, Head) else item for item in items]


class HeadTests(SynchronousTestCase):
    def test_parse_and_encode(self):
        head = parse_head(GET[:-4])
        self.assertEqual((head.method, head.target, head.version), ("GET", "/a", "HTTP/1.1"))
        self.assertEqual(head.header("HOST"), "h")
        self.assertEqual(head.encode(), GET)

    def test_cookie_taken_out(self):
        head = parse_head(GET[:-4])
        self.assertEqual(cookie_value(head, "dssr_job_7"), "t")
        stripped = without_cookie(head, "dssr_job_7")
        self.assertEqual(stripped.header("cookie"), "x=1; y=2")
        self.assertIsNone(cookie_value(stripped, "dssr_job_7"))
        alone = parse_head(b"GET / HTTP/1.1\r\nCookie: dssr_job_7=t")
        self.assertIsNone(without_cookie(alone, "dssr_job_7").header("cookie"))

    def test_refused(self):
        for bad in (b"GET /", b"GET / HTTP/2", b"GET / HTTP/1.1\r\nno colon",
                    b"GET / HTTP/1.1\r\n Folded: x"):
            self.assertRaises(BadRequest, parse_head, bad)


class FramerTests(SynchronousTestCase):
    def test_keep_alive_requests_with_bodies(self):
        framer = RequestFramer()
        data = (b"POST /1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                b"GET /2 HTTP/1.1\r\n\r\n")
        items = []
        for byte in range(len(data)):  # byte by byte: nothing depends on packet edges
            items += framer.feed(data[byte:byte + 1])
        self.assertEqual(b"".join(i for i in items if isinstance(i, bytes)), b"hello")
        self.assertEqual([i.target for i in items if isinstance(i, Head)], ["/1", "/2"])

    def test_chunked_body(self):
        framer = RequestFramer()
        items = framer.feed(b"POST /1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        self.assertEqual(heads_and_bytes(items), [
            "/1", b"5\r\n", b"hello", b"\r\n", b"0\r\n", b"X-Trailer: 1\r\n", b"\r\n", "/2"])

    def test_upgrade_turns_to_raw_bytes(self):
        framer = RequestFramer()
        items = framer.feed(b"GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n"
                            b"Upgrade: websocket\r\n\r\n\x81\x05GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(heads_and_bytes(items), ["/ws", b"\x81\x05GET / HTTP/1.1\r\n\r\n"])

    def test_refusals(self):
        for data in (b"x" * 70000, b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                     b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                     b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
            self.assertRaises(BadRequest, RequestFramer().feed, data)
