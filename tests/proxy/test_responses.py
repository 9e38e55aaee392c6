"""Following the app's responses: where each ends, and when an upgrade was agreed."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.proxy.responses import MAX_RESPONSE_HEAD, BadResponse, ResponseFramer


def framer(*asked):
    """A framer expecting the requests ``asked`` (method, or (method, upgrade))."""
    responses = ResponseFramer()
    for request in asked:
        method, upgrade = request if isinstance(request, tuple) else (request, False)
        responses.expect(method, upgrade)
    return responses


def byte_by_byte(responses, data):
    decided = [responses.feed(data[at:at + 1]) for at in range(len(data))]
    return [d for d in decided if d is not None]


class EndsTests(SynchronousTestCase):
    def test_bodies_by_length_and_chunks(self):
        data = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")
        for feed in (lambda r: [r.feed(data)], lambda r: byte_by_byte(r, data)):
            responses = framer("GET", "POST", "GET")
            feed(responses)
            self.assertFalse(responses.idle())
            responses.feed(b"HTTP/1.1 204 No Content\r\n\r\n")
            self.assertTrue(responses.idle())

    def test_no_body_for_head_204_304_and_1xx(self):
        responses = framer("HEAD", "GET", "GET", "GET")
        responses.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
                       b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
                       b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n")
        self.assertFalse(responses.idle())
        responses.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertTrue(responses.idle())

    def test_a_body_until_close_is_raw(self):
        responses = framer("GET", "GET")
        responses.feed(b"HTTP/1.0 200 OK\r\n\r\nanything HTTP/1.1 200 OK\r\n\r\n")
        self.assertTrue(responses.raw())
        self.assertFalse(responses.idle())

    def test_a_length_body_costs_nothing_per_byte(self):
        responses = framer("GET")
        responses.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        block = b"\r\n\r\n" * 16384
        for _ in range(1000):
            self.assertIsNone(responses.feed(block))
        self.assertFalse(responses.idle())


class UpgradeTests(SynchronousTestCase):
    def test_101_to_an_upgrade_is_raw(self):
        responses = framer("GET", ("GET", True))
        decided = byte_by_byte(responses, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                               b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n\x81")
        self.assertEqual(decided, [True])
        self.assertTrue(responses.raw())
        self.assertIsNone(responses.feed(b"HTTP/1.1 garbage"))

    def test_another_answer_to_an_upgrade(self):
        responses = framer(("GET", True))
        self.assertIs(responses.feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1\r\n\r\n"),
                      False)
        self.assertFalse(responses.raw())
        responses.feed(b"x")
        self.assertTrue(responses.idle())


class GarbageTests(SynchronousTestCase):
    def test_refused(self):
        for asked, data in [
            (("GET",), b"SSH-2.0-OpenSSH_9\r\n\r\n"),
            ((), b"HTTP/1.1 200 OK\r\n\r\n"),
            (("GET",), b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            (("GET",), b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            (("GET",), b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            (("GET",), b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
            (("GET",), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            (("GET",), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxyz\r\n"),
            (("GET",), b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_RESPONSE_HEAD),
        ]:
            self.assertRaises(BadResponse, framer(*asked).feed, data)

    def test_a_head_over_several_reads_is_bounded(self):
        responses = framer("GET")
        responses.feed(b"HTTP/1.1 200 OK\r\n")
        with self.assertRaises(BadResponse):
            for _ in range(MAX_RESPONSE_HEAD // 1000 + 1):
                responses.feed(b"X-A: " + b"a" * 995)
