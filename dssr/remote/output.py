"""Collecting a command's output without letting it exhaust memory."""

from dssr.remote.interfaces import OutputTooLarge


class OutputBuffer:
    """Bytes written to one stream (``name``: stdout/stderr), refused past ``limit``."""

    def __init__(self, name: str, limit: int):
        self.name = name
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        """Keep ``data``; raise ``OutputTooLarge`` (keeping nothing more) past the limit."""
        if self._size + len(data) > self.limit:
            raise OutputTooLarge(
                f"the command wrote more than {self.limit} bytes to {self.name}; it was stopped"
            )
        self._chunks.append(data)
        self._size += len(data)

    def value(self) -> bytes:
        """Everything kept so far."""
        return b"".join(self._chunks)


def first_line(data: bytes) -> str:
    """The first non-empty line of a command's output, for error messages."""
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()[:300]
    return "(no output)"
