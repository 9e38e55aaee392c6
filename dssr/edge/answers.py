"""Answers the edge writes itself, as raw HTTP bytes: always JSON, always closing."""

import json

from twisted.web.http import RESPONSES

from dssr.errors import DSSRError

REASONS = {**RESPONSES, 431: b"Request Header Fields Too Large"}


def raw_answer(error: DSSRError, with_body: bool = True) -> bytes:
    """A complete ``HTTP/1.1`` response for ``error``, with ``Connection: close``.

    ``with_body`` is false for HEAD requests (the headers still give the length).
    """
    body = json.dumps(error.body(), separators=(",", ":")).encode()
    head = [
        b"HTTP/1.1 %d %s" % (error.status, REASONS.get(error.status, b"Error")),
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(body),
        b"Connection: close",
    ]
    head += [f"{name}: {value}".encode("latin-1") for name, value in error.headers().items()]
    return b"\r\n".join(head) + b"\r\n\r\n" + (body if with_body else b"")
