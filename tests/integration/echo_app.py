"""An interactive job's app for the tests: HTTP and WebSocket echo, standard library only.

It listens on $JARVICE_SERVICE_PORT. ``GET /`` answers a page naming the job's
password, ``GET /big`` BIG bytes of ``payload()``, ``GET /count`` how many requests
it has seen, and ``/ws`` echoes WebSocket messages.
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


def read_frame(stream) -> tuple[int, bytes] | None:
    head = stream.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack(">H", stream.read(2))
    elif length == 127:
        (length,) = struct.unpack(">Q", stream.read(8))
    mask = stream.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(stream.read(length)))
    return opcode, data


def frame(opcode: int, data: bytes, mask: bytes | None = None) -> bytes:
    """One final frame; masked with ``mask`` (a client's) when given."""
    length = len(data)
    if length < 126:
        head = bytes((0x80 | opcode, length | (0x80 if mask else 0)))
    elif length < 65536:
        head = bytes((0x80 | opcode, 126 | (0x80 if mask else 0))) + struct.pack(">H", length)
    else:
        head = bytes((0x80 | opcode, 127 | (0x80 if mask else 0))) + struct.pack(">Q", length)
    if mask:
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return head + data


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


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
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(self.headers["Sec-WebSocket-Key"]))
        self.end_headers()
        self.wfile.flush()
        while True:
            got = read_frame(self.rfile)
            if got is None or got[0] == 8:
                break
            self.wfile.write(frame(got[0], got[1]))
            self.wfile.flush()
        self.close_connection = True


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
