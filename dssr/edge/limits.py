"""How much the HTTP edge accepts, and for how long, and the process's file limit."""

import resource
from dataclasses import dataclass

from dssr.settings import BY_KEY

RESERVED_FDS = 128  # descriptors kept for SSH channels, the dummy database, logs
MAX_FD_LIMIT = 1 << 20  # the soft limit asked for when the hard limit is "unlimited"


@dataclass(frozen=True)
class EdgeLimits:
    """The edge's bounds; the defaults are the settings' defaults (``dssr.settings``)."""

    max_body: int = BY_KEY["max_body"].default
    max_connections: int = BY_KEY["max_connections"].default
    max_connections_per_peer: int = BY_KEY["max_connections_per_peer"].default
    header_timeout: float = BY_KEY["header_timeout"].default
    request_timeout: float = BY_KEY["request_timeout"].default
    idle_timeout: float = BY_KEY["http_idle_timeout"].default
    max_request_line: int = 8192  # bytes; longer: 414
    max_header_bytes: int = 16384  # request line and header lines together; more: 431
    max_headers: int = 100  # header lines; more: 431
    linger: float = 2.0  # seconds of silence from a refused client before the close
    max_drained: int = 16 * 1024 * 1024  # bytes a refused client may send before the close
    # Head and idle deadlines fall up to this fraction later (but up to at least
    # min_deadline_spread seconds later), at random, so that the connections of a burst
    # (1490 opened at once) do not all expire in one instant. 1490 408s squeezed into
    # 0.2 s (a 2 s deadline's 10 %) held /live up to 37 ms, 75 ms on a slower machine;
    # spread over 1 s, up to 11 ms.
    deadline_spread: float = 0.1
    min_deadline_spread: float = 1.0

    @classmethod
    def from_settings(cls, settings) -> "EdgeLimits":
        """The limits a ``Settings`` sets."""
        return cls(
            max_body=settings.max_body,
            max_connections=settings.max_connections,
            max_connections_per_peer=settings.max_connections_per_peer,
            header_timeout=settings.header_timeout,
            request_timeout=settings.request_timeout,
            idle_timeout=settings.http_idle_timeout,
        )

    def connection_cap(self, fd_limit: int) -> int:
        """Connections served at once: ``max_connections``, kept below the file limit."""
        return max(1, min(self.max_connections, fd_limit - RESERVED_FDS))


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the new soft limit.

    The default soft limit (often 1024) would let a few hundred idle connections
    make ``accept`` fail with EMFILE for everyone.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_FD_LIMIT if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return MAX_FD_LIMIT if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted
