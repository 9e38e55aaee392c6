"""Deciding on a request from its head alone, before any of its body is read."""

from collections.abc import Callable

from twisted.web.http_headers import Headers

from dssr.errors import BadRequest, BodyTooLarge, Forbidden, MethodNotAllowed

# Sec-Fetch-Site values a browser sends for requests that are not cross-site.
_NOT_CROSS_SITE = (b"same-origin", b"none")

Admit = Callable[[bytes, bytes, Headers], None]


def check_head(method: bytes, target: bytes, headers: Headers, length: int | None,
               max_body: int, admit: Admit) -> None:
    """Raise the ``DSSRError`` a request deserves from its head, or return.

    In order: a target that is not a path (400), a bad ``Host`` (400), a browser's
    cross-site request (403), what ``admit`` refuses (unknown path 404, method 405,
    credentials 401), a ``Content-Length`` over ``max_body`` (413). ``length`` is
    the announced body length: None for a chunked body.
    """
    if not target.startswith(b"/"):
        if target == b"*" and method == b"OPTIONS":
            raise MethodNotAllowed("DSSR answers no OPTIONS requests", ("GET", "HEAD", "POST"))
        raise BadRequest("the request target must be a path", field="path")
    hosts = headers.getRawHeaders(b"host") or []
    if len(hosts) > 1 or not all(_printable_ascii(host) for host in hosts):
        raise BadRequest("the Host header must be one printable ASCII value", field="Host")
    # Upstream is a program: it sends neither header. A browser sends at least one on a
    # cross-site form POST, which would otherwise reach a DSSR without a server key.
    site = (headers.getRawHeaders(b"sec-fetch-site") or [b"none"])[0].strip().lower()
    if headers.hasHeader(b"origin") or site not in _NOT_CROSS_SITE:
        raise Forbidden("requests from web pages are refused")
    admit(method, target.split(b"?", 1)[0], headers)
    if length is not None and length > max_body:
        raise BodyTooLarge(f"the request body is larger than {max_body} bytes", field="args")


def _printable_ascii(value: bytes) -> bool:
    return value.isascii() and all(0x20 < byte < 0x7F for byte in value)
