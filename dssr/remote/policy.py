"""The limits and timings of SSH links, and their reconnect backoff."""

from collections.abc import Callable
from dataclasses import dataclass

from dssr.settings import default


@dataclass(frozen=True)
class Policy:
    """Limits and timings shared by every link (seconds; 0 disables a timeout).

    Those that are settings default to the settings table's ``ssh_*`` defaults.
    """

    max_channels: int = default("ssh_max_channels")
    max_output: int = default("ssh_max_output")
    command_timeout: float = default("ssh_command_timeout")
    queue_timeout: float = 30.0
    # How long a command waits while the connection is down: a longer outage fails
    # commands (a 503 upstream retries) instead of holding every caller.
    connect_wait: float = default("ssh_connect_wait")
    connect_timeout: float = 15.0
    keepalive: float = default("ssh_keepalive")
    keepalive_misses: int = 3
    idle_timeout: float = default("ssh_idle_timeout")
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    refused_retry: float = 0.5


def backoff_delay(attempt: int, base: float, cap: float, random: Callable[[], float]) -> float:
    """Seconds before reconnect ``attempt`` (0, 1, ...): doubling from ``base`` up to ``cap``.

    Jittered into the upper half of that span, so several DSSRs (or users) that lost
    the login node together do not all come back in step.
    """
    doubled: int = 2 ** min(attempt, 64)
    ceiling = min(cap, base * doubled)
    return ceiling * (0.5 + random() / 2)
