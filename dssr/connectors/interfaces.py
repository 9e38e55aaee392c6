"""The scheduler-neutral interface every connector provides."""

from zope.interface import Interface


class IConnector(Interface):
    """Turns legacy API calls into work on one cluster.

    Every method returns a Deferred. Failures the client should see are raised as
    ``dssr.errors.DSSRError`` subclasses: ``Unavailable`` when the cluster cannot be
    asked (never an empty answer instead), ``BadRequest``/``Forbidden`` for input the
    cluster side refuses.

    A connector that holds resources (connections, files) exposes them as an
    ``IService`` in its ``service`` attribute, started and stopped with the process.
    (The connector itself cannot be that service: ``IService.running`` would clash
    with ``running()`` below.)
    """

    def submit(request):
        """Start the job described by a ``SubmitRequest``; fire with ``Submitted``.

        Submitting a name that already has a live job returns that job again.
        """

    def running():
        """Fire with a list of ``ListedJob`` for jobs this downstream runs now."""

    def queued():
        """Fire with a list of ``ListedJob`` for jobs waiting to start."""

    def runstatus(ref):
        """Fire with the ``RunStatus`` of the ``JobRef``, or None if it is unknown."""

    def exitstatus(ref):
        """Fire with the job's ``ExitStatus`` and then forget its files (the only GC)."""

    def terminate(ref):
        """Stop the job (it ends as cancelled); fire with None. No GC here."""

    def release(ref):
        """Release a held job; fire with None."""

    def events(ref):
        """Fire with human-readable scheduler detail about the job (a str)."""

    def request_info(ref):
        """Fire with the job's ``JobInfo`` (``/request/.../info``)."""

    def request_tail(ref, lines):
        """Fire with the last ``lines`` lines of the job's output, or None if none yet."""

    def request_screenshot(ref):
        """Fire with PNG bytes of an interactive job's screen, or None if none."""

    def request_pvcls(path, details):
        """Fire with a list of ``DirEntry`` for ``path`` below the configured roots.

        ``path`` is already normalised, absolute and free of ``..``; a path outside
        every root raises ``Forbidden``, a missing one ``NotFound``.
        """

    def gc():
        """Fire with None if the cluster and its scheduler answer, else raise ``Unavailable``."""

    def ready():
        """Fire with None once the connector is usable, else raise ``Unavailable(reason)``."""
