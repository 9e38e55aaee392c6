"""Value types passed between the API and connectors, and the job id syntax they share.

No dependencies: the API edge, the connectors and the Slurm commands all import it.
"""

import hashlib
import itertools
import re
from dataclasses import dataclass, field

# A Slurm job id: ``123``, an array job's ``123_4``, a heterogeneous job's ``123+1``.
JOBID = re.compile(r"[0-9]{1,19}(?:[_+][0-9]{1,10})?")


@dataclass(frozen=True)
class JobRef:
    """A job as upstream names it: Jarvice name and number, and the downstream job id."""

    name: str
    number: int
    jobid: str

    @property
    def path(self) -> str:
        """The ``name/number/jobid`` form used in ``/runstatus`` and ``/request/...``."""
        return f"{self.name}/{self.number}/{self.jobid}"


@dataclass(frozen=True)
class SubmitRequest:
    """A validated ``/submit``: ``script`` is the decoded executor script (a template)."""

    name: str
    number: int
    nodes: int
    executor: str
    script: str
    bearer: str = ""
    held: bool = False


@dataclass(frozen=True)
class Submitted:
    """What a submit produced: the cluster job id and the script as submitted (no secrets)."""

    jobid: str
    fscript: str = ""


@dataclass(frozen=True)
class ListedJob:
    """One line of ``/running`` or ``/queued``."""

    name: str
    jobid: str


@dataclass(frozen=True)
class RunStatus:
    """Where a live job runs and for how long (``elapsed`` as ``HH:MM:SS``)."""

    nodes: tuple[str, ...]
    elapsed: str


@dataclass(frozen=True)
class ExitStatus:
    """How a job ended. ``state`` is None when the job could not be found at all."""

    rc: int
    totaltime: str = "00:00:00"
    state: str | None = None
    output: str = ""


UNKNOWN_EXIT = ExitStatus(rc=-9)


@dataclass(frozen=True)
class JobInfo:
    """The ``info`` request's answer; ``url`` is an interactive job's web front."""

    url: str = ""
    about: str = ""
    help: str = ""
    actions: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class AppAccess:
    """The ``connect`` request's answer for an interactive job whose app runs."""

    address: str
    password: str


@dataclass(frozen=True)
class InteractiveApp:
    """How DSSR's proxy reaches a running interactive job's app: ``endpoint``, a
    Twisted ``IStreamClientEndpoint``."""

    endpoint: object


APP_PORTS = 8  # ports an interactive job's app may listen on, tried in order
# Below Linux's ephemeral range (32768-60999), where every outgoing connection takes a
# local port that an app then cannot bind.
_PORT_BASE, _PORT_SPAN = 20000, 12768


def app_ports(name: str, number: int) -> tuple[int, ...]:
    """The ports the app of Jarvice job ``name``/``number`` may listen on: its batch
    script tries them in order, and the proxy connects to no other, whatever the job
    writes in its app record. Several, as one may be taken on a shared node."""
    ports: list[int] = []
    for index in itertools.count():
        digest = hashlib.sha256(f"{name}\0{number}\0{index}".encode()).digest()
        port = _PORT_BASE + int.from_bytes(digest[:4], "big") % _PORT_SPAN
        if port not in ports:
            ports.append(port)
            if len(ports) == APP_PORTS:
                return tuple(ports)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class DirEntry:
    """One entry of a ``pvcls`` listing; ``path`` is relative to the listed root."""

    path: str
    is_dir: bool
    mtime: int
    size: int


def hms(seconds: float) -> str:
    """Seconds as ``HH:MM:SS`` (hours may exceed 24), the elapsed-time form upstream reads."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
