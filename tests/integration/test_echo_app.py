"""The echo app's WebSocket framing (RFC 6455's own examples) and its /ws endpoint.

No rig: the app runs in a thread of this process on a free port.
"""

import io
import socket
import struct
import threading

from twisted.trial.unittest import TestCase

from tests.integration import echo_app

MASK = bytes.fromhex("37fa213d")
# RFC 6455 5.7: a single-frame masked and unmasked text message "Hello".
MASKED_HELLO = bytes.fromhex("818537fa213d7f9f4d5158")
HELLO = bytes.fromhex("810548656c6c6f")


class FramingTests(TestCase):
    def test_accept_key(self):
        # RFC 6455 1.3
        self.assertEqual(echo_app.accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
                         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    def test_rfc_examples(self):
        self.assertEqual(echo_app.frame(1, b"Hello", MASK), MASKED_HELLO)
        self.assertEqual(echo_app.frame(1, b"Hello"), HELLO)
        self.assertEqual(echo_app.read_frame(io.BytesIO(MASKED_HELLO), masked=True),
                         (1, b"Hello"))
        self.assertEqual(echo_app.read_frame(io.BytesIO(HELLO), masked=False), (1, b"Hello"))

    def test_lengths(self):
        for size in (0, 125, 126, 65535, 65536):
            data = bytes(range(256)) * (size // 256) + bytes(size % 256)
            encoded = echo_app.frame(2, data, MASK)
            self.assertEqual(len(encoded), size + 6 + (2 if 126 <= size < 65536 else 0)
                             + (8 if size >= 65536 else 0))
            self.assertEqual(echo_app.read_frame(io.BytesIO(encoded)), (2, data))

    def test_wrong_masking_and_truncation(self):
        self.assertRaises(ValueError, echo_app.read_frame, io.BytesIO(HELLO), masked=True)
        self.assertRaises(ValueError, echo_app.read_frame, io.BytesIO(MASKED_HELLO),
                          masked=False)
        self.assertIsNone(echo_app.read_frame(io.BytesIO(MASKED_HELLO[:-1])))
        self.assertIsNone(echo_app.read_frame(io.BytesIO(b"")))


class EndpointTests(TestCase):
    def setUp(self):
        self.server = echo_app.Server(("127.0.0.1", 0), echo_app.Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)

    def connect(self, request=None):
        """A connection that sent ``request`` (a handshake by default): the socket, a
        file reading it, and the answer's status line."""
        sock = socket.create_connection(self.server.server_address, timeout=10)
        self.addCleanup(sock.close)
        sock.sendall(request or echo_app.upgrade_request("/x/ws", "app",
                                                         "dGhlIHNhbXBsZSBub25jZQ=="))
        stream = sock.makefile("rb")
        self.addCleanup(stream.close)
        return sock, stream, stream.readline()

    def test_echo_ping_close(self):
        sock, stream, status = self.connect()
        self.assertIn(b" 101 ", status)
        head = b"".join(iter(stream.readline, b"\r\n"))
        self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", head)
        sock.sendall(echo_app.frame(1, b"Hello", MASK))
        self.assertEqual(stream.read(len(HELLO)), HELLO)  # unmasked
        # a fragmented binary message comes back whole
        sock.sendall(bytes((0x02, 0x82)) + MASK + echo_app.unmask(b"ab", MASK)
                     + echo_app.frame(0, b"cd", MASK))
        self.assertEqual(echo_app.read_frame(stream, masked=False), (2, b"abcd"))
        sock.sendall(echo_app.frame(9, b"p", MASK))
        self.assertEqual(echo_app.read_frame(stream, masked=False), (10, b"p"))
        sock.sendall(echo_app.frame(8, struct.pack(">H", 1000) + b"bye", MASK))
        self.assertEqual(echo_app.read_frame(stream, masked=False),
                         (8, struct.pack(">H", 1000)))
        self.assertEqual(stream.read(), b"")  # and the app closes

    def test_unmasked_client_frame(self):
        sock, stream, status = self.connect()
        self.assertIn(b" 101 ", status)
        while stream.readline() not in (b"\r\n", b""):
            pass
        sock.sendall(echo_app.frame(1, b"Hello"))
        self.assertEqual(echo_app.read_frame(stream), (8, struct.pack(">H", 1002)))

    def test_not_a_handshake(self):
        _, _, status = self.connect(b"GET /ws HTTP/1.1\r\nHost: app\r\nConnection: close"
                                    b"\r\n\r\n")
        self.assertIn(b" 400 ", status)
