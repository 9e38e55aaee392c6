"""The scheduler-neutral interface every connector provides."""

from collections.abc import Awaitable, Iterable

from twisted.application.service import IService
from zope.interface import Attribute, Interface

from dssr.jobs import (
    AppAccess,
    DirEntry,
    ExitStatus,
    InteractiveApp,
    JobInfo,
    JobRef,
    ListedJob,
    RunStatus,
    SubmitRequest,
    Submitted,
)
from dssr.samples import Sample


class IConnector(Interface):
    """Turns legacy API calls into work on one cluster.

    The methods below (all but ``metrics``) are coroutine functions (``async def``);
    a method returning a Deferred does as well, since DSSR only awaits the result.
    "Returns" below is what the awaited call gives. Failures the client should see are
    raised as ``dssr.errors.DSSRError`` subclasses: ``Unavailable`` when the cluster
    cannot be asked (never an empty answer instead), ``BadRequest``/``Forbidden`` for
    input the cluster side refuses.
    """

    service: IService | None = Attribute(
        "An IService holding the connector's resources (connections, files), started "
        "and stopped with the process; None if it holds none. (The connector itself "
        "cannot be that service: IService.running would clash with running() below.)")

    def metrics() -> Iterable[Sample]:
        """``dssr.samples.Sample`` values for ``/metrics`` now (an iterable, maybe empty).

        Called at every scrape, in the reactor thread: it must not block or fail.
        """

    def submit(request: SubmitRequest) -> Awaitable[Submitted]:
        """Start the job described by a ``SubmitRequest``; returns ``Submitted``.

        Submitting a name that already has a live job returns that job again.
        """

    def running() -> Awaitable[list[ListedJob]]:
        """Returns a list of ``ListedJob`` for jobs this downstream runs now."""

    def queued() -> Awaitable[list[ListedJob]]:
        """Returns a list of ``ListedJob`` for jobs waiting to start."""

    def runstatus(ref: JobRef) -> Awaitable[RunStatus | None]:
        """Returns the ``RunStatus`` of the ``JobRef``, or None if it is unknown."""

    def exitstatus(ref: JobRef) -> Awaitable[ExitStatus]:
        """Returns the ended job's ``ExitStatus`` (``NotYet`` while it has not ended)."""

    def terminate(ref: JobRef) -> Awaitable[None]:
        """Stop the job (it ends as cancelled); ``Unavailable`` if its end cannot be seen."""

    def release(ref: JobRef) -> Awaitable[None]:
        """Release a held job."""

    def events(ref: JobRef) -> Awaitable[str]:
        """Returns human-readable scheduler detail about the job (a str)."""

    def request_info(ref: JobRef) -> Awaitable[JobInfo]:
        """Returns the job's ``JobInfo`` (``/request/.../info``)."""

    def request_connect(ref: JobRef) -> Awaitable[AppAccess | None]:
        """Returns the ``AppAccess`` of an interactive job whose app runs, else None."""

    def interactive_app(jobid: str, number: int) -> Awaitable[InteractiveApp | None]:
        """Returns the ``InteractiveApp`` of the running interactive job ``jobid``
        submitted as Jarvice job ``number``, or None (unknown, ended, not started).

        DSSR's proxy asks it for every new client connection (sharing a lookup for a
        second); nothing may be kept that another DSSR replica would lack.
        """

    def request_tail(ref: JobRef, lines: int) -> Awaitable[str | None]:
        """Returns the last ``lines`` lines of the job's output, or None if none yet."""

    def request_screenshot(ref: JobRef) -> Awaitable[bytes | None]:
        """Returns PNG bytes of an interactive job's screen, or None if none."""

    def request_pvcls(path: str, details: bool) -> Awaitable[list[DirEntry]]:
        """Returns a list of ``DirEntry`` for ``path`` below the configured roots.

        ``path`` is already normalised, absolute and free of ``..``; a path outside
        every root raises ``Forbidden``, a missing one ``NotFound``.
        """

    def gc() -> Awaitable[None]:
        """Returns once the cluster and its scheduler answer, else raises ``Unavailable``."""

    def ready() -> Awaitable[None]:
        """Returns once the connector is usable, else raises ``Unavailable(reason)``."""
