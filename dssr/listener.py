"""A listening service that ends the process, in one line, when it cannot listen."""

from twisted.application.internet import StreamServerEndpointService


class Listener(StreamServerEndpointService):
    """Listens on ``endpoint`` (the setting ``label`` described it as ``description``)
    for ``what``; a port in use, out of range or not permitted is ``SystemExit``
    naming them, never a traceback and a process serving nothing."""

    _raiseSynchronously = True

    def __init__(self, endpoint, factory, what: str, label: str, description: str):
        super().__init__(endpoint, factory)
        self.what = what
        self.label = label
        self.description = description

    def privilegedStartService(self):
        try:
            super().privilegedStartService()
        except Exception as error:  # whatever listen raised (CannotListenError, OverflowError)
            reason = getattr(getattr(error, "socketError", None), "strerror", None) or error
            raise SystemExit(f"dssr: cannot serve {self.what} on {self.description} "
                             f"({self.label}): {reason}") from None
