"""A listening service that ends the process, in one line, when it cannot listen."""

from typing import Generic, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

_log = Logger(namespace="dssr")
F = TypeVar("F", bound=IProtocolFactory)


class Listener(Service, Generic[F]):
    """Serves ``factory`` on ``endpoint`` (which setting ``label`` describes as
    ``description``) for ``what``. A port in use, out of range or not permitted is
    ``SystemExit`` naming them, never a traceback and a process serving nothing."""

    def __init__(self, endpoint: IStreamServerEndpoint, factory: F, what: str,
                 label: str, description: str):
        self.endpoint = endpoint
        self.factory = factory
        self.what = what
        self.label = label
        self.description = description
        # the Deferred of the listen, then of the port
        self._listening: Deferred[IListeningPort] | None = None
        self.port: IListeningPort | None = None

    def _refusal(self, error: BaseException | None) -> str:
        reason = getattr(getattr(error, "socketError", None), "strerror", None) or error
        return (f"dssr: cannot serve {self.what} on {self.description} ({self.label}): "
                f"{reason}")

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        failed: list[Failure] = []
        self._listening = self.endpoint.listen(self.factory)
        self._listening.addCallbacks(self._listened, failed.append)
        if failed:  # endpoints that fail at once: a bound port, a bad address
            raise SystemExit(self._refusal(failed[0].value)) from None

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        return port

    def startService(self) -> None:
        super().startService()
        if self._listening is None:
            self.privilegedStartService()
        else:
            self._listening.addErrback(
                lambda failure: _log.critical("{line}", line=self._refusal(failure.value)))

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.port is not None:
            return self.port.stopListening()
        if self._listening is not None:
            self._listening.cancel()
        return None
