"""Errors DSSR raises on purpose, each carrying the HTTP status it maps to.

Connectors and validators raise these; ``dssr.api`` turns them into JSON answers in
one place. Anything else that escapes a handler is a bug and becomes a 500.
"""


class DSSRError(Exception):
    """An expected failure with an HTTP status and a message safe to show clients."""

    status = 500

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict:
        """The JSON object sent to the client."""
        answer = {"error": self.message}
        if self.field is not None:
            answer["field"] = self.field
        return answer


class BadRequest(DSSRError):
    """The request is malformed; ``field`` names the offending argument."""

    status = 400


class Unauthorized(DSSRError):
    """Credentials are missing or wrong."""

    status = 401


class Forbidden(DSSRError):
    """The caller is known but may not do this (e.g. an unmapped user)."""

    status = 403


class NotFound(DSSRError):
    """The thing asked for does not exist (yet)."""

    status = 404


class BodyTooLarge(DSSRError):
    """The request body exceeds the configured limit."""

    status = 413


class Unavailable(DSSRError):
    """The cluster (or its scheduler) cannot be reached right now; retry later."""

    status = 503
