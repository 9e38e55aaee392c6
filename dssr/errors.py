"""Errors DSSR raises on purpose, each carrying the HTTP status it maps to.

Connectors, validators and the HTTP edge raise these; they become JSON answers in
one place (``DSSRError.body`` and ``DSSRError.headers``). Anything else that escapes
a handler is a bug and becomes a 500.
"""


class DSSRError(Exception):
    """An expected failure with an HTTP status and a message safe to show clients."""

    status = 500

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, str]:
        """The JSON object sent to the client."""
        answer = {"error": self.message}
        if self.field is not None:
            answer["field"] = self.field
        return answer

    def headers(self) -> dict[str, str]:
        """Response headers the status calls for (none by default)."""
        return {}


class BadRequest(DSSRError):
    """The request is malformed; ``field`` names the offending argument."""

    status = 400


class Unauthorized(DSSRError):
    """Credentials are missing or wrong."""

    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="dssr"'}


class Forbidden(DSSRError):
    """The caller is known but may not do this (e.g. an unmapped user, a browser)."""

    status = 403


class NotFound(DSSRError):
    """The thing asked for does not exist (yet)."""

    status = 404


class MethodNotAllowed(DSSRError):
    """The endpoint exists but does not answer this HTTP method."""

    status = 405

    def __init__(self, message: str, allow: tuple[str, ...]):
        super().__init__(message)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow)}


class RequestTimeout(DSSRError):
    """The client took too long to send its request."""

    status = 408


class BodyTooLarge(DSSRError):
    """The request body exceeds the configured limit."""

    status = 413


class TargetTooLong(DSSRError):
    """The request line is longer than DSSR reads."""

    status = 414


class HeadersTooLarge(DSSRError):
    """The request has more or longer header lines than DSSR reads."""

    status = 431


class Unavailable(DSSRError):
    """The cluster (or its scheduler) cannot be reached right now; retry later."""

    status = 503


class NotYet(Unavailable):
    """What was asked for is not there yet (a job still in the queue): ask again after
    ``retry_after`` seconds (``Retry-After``)."""

    def __init__(self, message: str, retry_after: int = 5, field: str | None = None):
        super().__init__(message, field)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
