"""A listening service that ends the process, in one line, when it cannot listen."""

from twisted.application.service import Service
from twisted.logger import Logger

_log = Logger(namespace="dssr")


class Listener(Service):
    """Serves ``factory`` on ``endpoint`` (which setting ``label`` describes as
    ``description``) for ``what``. A port in use, out of range or not permitted is
    ``SystemExit`` naming them, never a traceback and a process serving nothing."""

    def __init__(self, endpoint, factory, what: str, label: str, description: str):
        self.endpoint = endpoint
        self.factory = factory
        self.what = what
        self.label = label
        self.description = description
        self._listening = None  # the Deferred of the listen, then of the port
        self.port = None

    def _refusal(self, error: BaseException) -> str:
        reason = getattr(getattr(error, "socketError", None), "strerror", None) or error
        return (f"dssr: cannot serve {self.what} on {self.description} ({self.label}): "
                f"{reason}")

    def privilegedStartService(self):
        super().privilegedStartService()
        failed = []
        self._listening = self.endpoint.listen(self.factory)
        self._listening.addCallbacks(self._listened, failed.append)
        if failed:  # endpoints that fail at once: a bound port, a bad address
            raise SystemExit(self._refusal(failed[0].value)) from None

    def _listened(self, port):
        self.port = port
        return port

    def startService(self):
        super().startService()
        if self._listening is None:
            self.privilegedStartService()
        else:
            self._listening.addErrback(
                lambda failure: _log.critical("{line}", line=self._refusal(failure.value)))

    def stopService(self):
        super().stopService()
        if self.port is not None:
            return self.port.stopListening()
        if self._listening is not None:
            self._listening.cancel()
        return None
