"""The HTTP server side: a Site whose requests refuse bodies over a size limit."""

import json

from twisted.web.http import parse_qs
from twisted.web.server import Request, Site

from dssr.errors import BodyTooLarge

FORM = b"application/x-www-form-urlencoded"


class LimitedRequest(Request):
    """A request that stops storing its body past ``max_body`` bytes and answers 413.

    twisted.web buffers the whole body before any resource runs, so the limit has to
    live here rather than in the Klein app.
    """

    max_body = 16 * 1024 * 1024

    def gotLength(self, length):
        self._received = 0
        self._too_large = length is not None and length > self.max_body
        super().gotLength(None if self._too_large else length)

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > self.max_body:
            self._too_large = True
        if not self._too_large:
            super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        # DSSR reads ``args`` from url-encoded forms and JSON only, so process() parses
        # the one form it needs. twisted.web's own parsing is skipped: it runs the
        # email package over every Content-Type (an eighth of DSSR's CPU when polled)
        # and answers a malformed multipart body with a bare 400 of its own.
        self._parsePOSTFormSubmission = False
        return super().requestReceived(command, path, version)

    def process(self):
        if not self._too_large:
            content_type = self.requestHeaders.getRawHeaders(b"content-type", [b""])[0]
            if content_type.split(b";")[0].strip().lower() == FORM:
                self.args.update(parse_qs(self.content.read(), 1))
                self.content.seek(0)
            return super().process()
        error = BodyTooLarge(f"request body larger than {self.max_body} bytes", field="args")
        self.setResponseCode(error.status)
        self.setHeader(b"Content-Type", b"application/json")
        self.setHeader(b"Connection", b"close")
        self.write(json.dumps(error.body()).encode())
        self.finish()
        return None


class QuietSite(Site):
    """A Site without the access log: ``dssr.api`` logs every call itself, with more detail."""

    displayTracebacks = False

    def log(self, request):
        pass


def make_site(resource, max_body: int) -> Site:
    """A Site serving ``resource`` that answers 413 to bodies over ``max_body`` bytes."""
    request_class = type("LimitedRequest", (LimitedRequest,), {"max_body": max_body})
    return QuietSite(resource, requestFactory=request_class)
