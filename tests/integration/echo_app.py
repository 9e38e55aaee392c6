"""An interactive job's app for the tests: HTTP and WebSocket echo, standard library only.

It listens on $JARVICE_SERVICE_PORT. ``GET /`` answers a page naming the job's
password, ``GET /big`` BIG bytes of ``payload()``, ``GET /count`` how many requests
it has seen, and ``/ws`` is a WebSocket (RFC 6455, minimally) that echoes each
text or binary message, answers pings and returns the close frame.
"""

import base64
import hashlib
import os
import random
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIG = int(os.environ.get("ECHO_APP_BIG", 20 * 1024 * 1024))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SEEN = [0]
LOCK = threading.Lock()


def payload() -> bytes:
    """The download's bytes, the same in the test and on the node."""
    return random.Random(1234).randbytes(BIG)


def unmask(data: bytes, mask: bytes) -> bytes:
    """``data`` XORed with the 4-byte ``mask`` repeated (RFC 6455 5.3; its own inverse)."""
    if not data:
        return data
    key = (mask * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def read_frame(stream, masked: bool | None = None) -> tuple[int, bytes] | None:
    """The next frame's (opcode, unmasked payload) from the file ``stream``, or None at
    the end of the stream. With ``masked`` True (a server reading a client) or False
    (a client reading a server), a frame masked otherwise raises ValueError."""
    got = read_frame_fin(stream, masked)
    return None if got is None else got[1:]


def read_frame_fin(stream, masked: bool | None = None) -> tuple[bool, int, bytes] | None:
    """``read_frame`` with the FIN bit first: False for all but a message's last frame."""
    head = stream.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if masked is not None and bool(head[1] & 0x80) != masked:
        raise ValueError("client frames must be masked, server frames must not")
    if length == 126:
        (length,) = struct.unpack(">H", stream.read(2))
    elif length == 127:
        (length,) = struct.unpack(">Q", stream.read(8))
    mask = stream.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = stream.read(length)
    if len(data) < length:
        return None
    return bool(head[0] & 0x80), opcode, unmask(data, mask)


def frame(opcode: int, data: bytes, mask: bytes | None = None) -> bytes:
    """One final frame; masked with ``mask`` (a client's) when given."""
    length = len(data)
    bit = 0x80 if mask else 0
    if length < 126:
        head = bytes((0x80 | opcode, length | bit))
    elif length < 65536:
        head = bytes((0x80 | opcode, 126 | bit)) + struct.pack(">H", length)
    else:
        head = bytes((0x80 | opcode, 127 | bit)) + struct.pack(">Q", length)
    if mask:
        return head + mask + unmask(data, mask)
    return head + data


def accept_key(key: str) -> str:
    """The server's ``Sec-WebSocket-Accept`` for the client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(path: str, host: str, key: str, headers: dict | None = None) -> bytes:
    """A client's opening handshake for ``path`` (RFC 6455 4.1)."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with LOCK:
            SEEN[0] += 1
        if self.path.endswith("/ws"):
            return self.websocket()
        if self.path.endswith("/big"):
            body = PAYLOAD
        elif self.path.endswith("/count"):
            body = str(SEEN[0]).encode()
        else:
            body = ("hello from the app; password " + os.environ.get(
                "JARVICE_SERVICE_PASSWORD", "") + "; cookie " +
                str(self.headers.get("Cookie"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def websocket(self):
        """RFC 6455's server side, minimally: the handshake, then text and binary
        messages echoed (fragments joined), pings answered, the close frame returned."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        try:
            valid = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            valid = False
        if (not valid or self.headers.get("Upgrade", "").lower() != "websocket"
                or "upgrade" not in self.headers.get("Connection", "").lower()
                or self.headers.get("Sec-WebSocket-Version") != "13"):
            self.send_error(400, "not a WebSocket handshake")
            return
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.flush()
            self.echo()
        except OSError:  # the client went away without a close frame
            pass

    def echo(self):
        kind, parts = 0, []  # a fragmented message's opcode and frames so far
        while True:
            try:
                got = read_frame_fin(self.rfile, masked=True)
            except ValueError:
                self.wfile.write(frame(8, struct.pack(">H", 1002)))  # protocol error
                return
            if got is None:
                return
            final, opcode, data = got
            if opcode == 8:
                self.wfile.write(frame(8, data[:2]))  # the close frame, with its code
                return
            if opcode == 9:
                self.wfile.write(frame(10, data))
            elif (opcode in (1, 2) and not kind) or (opcode == 0 and kind):
                kind = kind or opcode
                parts.append(data)
                if final:
                    self.wfile.write(frame(kind, b"".join(parts)))
                    kind, parts = 0, []
            elif opcode != 10:  # an unknown opcode, or fragments out of order
                self.wfile.write(frame(8, struct.pack(">H", 1002)))
                return


class Server(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops SYNs when 32 clients connect at once (a 1 s
    # retransmit each); real app servers (tornado, node) listen with 128.
    request_queue_size = 128
    daemon_threads = True


PAYLOAD = b""

if __name__ == "__main__":
    PAYLOAD = payload()
    server = Server(("0.0.0.0", int(os.environ["JARVICE_SERVICE_PORT"])), Handler)
    server.serve_forever()
