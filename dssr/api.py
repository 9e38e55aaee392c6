"""The legacy downstream HTTP API (PROTOCOL.md) as a Klein app over an ``IConnector``.

This module owns the HTTP side only: authentication, reading ``args``, validation
into typed requests, mapping ``DSSRError`` to status codes, and encoding answers in
the exact shapes upstream expects.
"""

import base64
import hmac
import json
import time
from dataclasses import asdict, dataclass
from urllib.parse import unquote_to_bytes

from klein import Klein
from twisted.logger import Logger
from twisted.web.resource import Resource
from werkzeug.exceptions import HTTPException

from dssr import validate
from dssr.errors import DSSRError, NotFound, Unauthorized, Unavailable
from dssr.jobs import ExitStatus, JobRef
from dssr.metrics import CONTENT_TYPE, Metrics

_app = Klein()
_log = Logger(namespace="dssr.api")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status code, content type and body bytes."""

    body: bytes
    content_type: str = "application/json"
    code: int = 200


def json_answer(value, code: int = 200) -> Answer:
    """``value`` encoded as compact JSON."""
    return Answer(json.dumps(value, separators=(",", ":")).encode(), code=code)


def text_answer(text: str) -> Answer:
    """``text`` as ``text/plain``."""
    return Answer(text.encode("utf-8"), "text/plain; charset=utf-8")


EMPTY = Answer(b"", "text/plain; charset=utf-8")


def termination_line(state: str) -> str:
    """The line upstream shows after a job's output."""
    return f"<< termination state: {state} -- see STDOUT for job errors >>"


def exitstatus_body(status: ExitStatus) -> list:
    """``[rc, totaltime, [stdout, termination_line]]``; the list is empty for unknown jobs."""
    output = [] if status.state is None else [status.output, termination_line(status.state)]
    return [status.rc, status.totaltime, output]


def listing_text(entries, details: bool) -> str:
    """``pvcls`` lines: ``/data/PATH`` (``/`` after directories), with details prefixed."""
    lines = []
    for entry in entries:
        path = "/data/" + entry.path.lstrip("/") + ("/" if entry.is_dir else "")
        lines.append(f"{entry.mtime} {entry.size} {path}" if details else path)
    return "".join(line + "\n" for line in lines)


class Utf8PathGuard(Resource):
    """Answers a path that is not UTF-8 once %-decoded with a JSON 400.

    Klein (werkzeug) would answer it with an HTML page before any route runs.
    """

    isLeaf = True

    def __init__(self, inner):
        super().__init__()
        self._inner = inner

    def render(self, request):
        try:
            unquote_to_bytes(request.path).decode("utf-8")
        except UnicodeDecodeError:
            request.setResponseCode(400)
            request.setHeader("Content-Type", "application/json")
            return json.dumps({"error": "the path is not UTF-8", "field": "path"}).encode()
        return self._inner.render(request)


def _endpoint(path: str, public: bool = False):
    """Register a handler for GET and POST on ``path``, wrapped by ``DSSRApi.serve``."""

    def decorate(handler):
        async def route(self, request, **kwargs):
            return await self.serve(request, handler, public, kwargs)

        _app.route(path, methods=["GET", "POST"], endpoint=handler.__name__)(route)
        return route

    return decorate


class DSSRApi:
    """Routes of the legacy API, served by one connector."""

    app = _app

    def __init__(self, connector, executor: str = "singularity", server_key: str = "",
                 open_metrics: bool = True):
        self.connector = connector
        self.executor = executor
        self.metrics = Metrics(connector)
        self._server_key = server_key.encode("utf-8")
        self._open_metrics = open_metrics

    def resource(self):
        """The twisted.web resource serving this API."""
        return Utf8PathGuard(self.app.resource())

    # -- plumbing -------------------------------------------------------------

    async def serve(self, request, handler, public: bool, kwargs) -> bytes:
        """Authenticate, run ``handler``, and turn its answer or error into a response."""
        started = time.monotonic()
        try:
            if not public:
                self._authenticate(request)
            answer = await handler(self, request, **kwargs)
        except DSSRError as error:
            if isinstance(error, Unauthorized):
                request.setHeader("WWW-Authenticate", 'Basic realm="dssr"')
            answer = json_answer(error.body(), error.status)
        except Exception:
            _log.failure("Bug while serving {path}", path=request.path.decode("latin-1"))
            answer = json_answer({"error": "internal error, see the DSSR log"}, 500)
        request.setResponseCode(answer.code)
        request.setHeader("Content-Type", answer.content_type)
        elapsed = time.monotonic() - started
        self.metrics.requests.observe(handler.__name__, answer.code, elapsed)
        _log.info(
            "{method} {path} {job} -> {code} in {ms:.1f} ms",
            method=request.method.decode("latin-1"),
            path=request.path.decode("latin-1"),
            job=getattr(request, "dssr_job", "-"),
            code=answer.code,
            ms=elapsed * 1000,
        )
        return answer.body

    def _authenticate(self, request) -> None:
        """Check HTTP Basic credentials against the server key, in constant time."""
        if not self._server_key:
            return
        header = request.getHeader("authorization") or ""
        scheme, _, encoded = header.partition(" ")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            given = b""
        if scheme.lower() != "basic" or not hmac.compare_digest(given, self._server_key):
            raise Unauthorized("valid HTTP Basic credentials required")

    @staticmethod
    def _args(request, required: bool = True) -> dict:
        """The request's ``args``: the ``args`` form/query field, or a JSON body."""
        content_type = (request.getHeader("content-type") or "").split(";")[0].strip()
        if content_type.lower() == "application/json":
            request.content.seek(0)
            raw = request.content.read() or None
        else:
            values = request.args.get(b"args")
            raw = values[0] if values else None
        if raw is None and not required:
            return {}
        return validate.parse_args(raw)

    def _job(self, request) -> JobRef:
        ref = validate.job_ref(self._args(request))
        request.dssr_job = ref.name
        return ref

    # -- probes and legacy constants -----------------------------------------

    @_endpoint("/live", public=True)
    async def live(self, request):
        return json_answer({"status": "OK"})

    @_endpoint("/ready", public=True)
    async def ready(self, request):
        try:
            await self.connector.ready()
        except Unavailable as error:
            return json_answer({"status": "BAD", "reason": error.message}, 503)
        return json_answer({"status": "OK"})

    @_endpoint("/metrics", public=True)
    async def metrics_text(self, request):
        if not self._open_metrics:
            self._authenticate(request)
        return Answer(self.metrics.exposition(), CONTENT_TYPE)

    @_endpoint("/gc")
    async def gc(self, request):
        try:
            await self.connector.gc()
        except Unavailable as error:
            _log.warn("gc: cluster unavailable: {reason}", reason=error.message)
            return json_answer({"status": "BAD"}, 500)
        return json_answer({"status": "OK"})

    @_endpoint("/nodes")
    async def nodes(self, request):
        return text_answer("true")

    @_endpoint("/online")
    async def online(self, request):
        return json_answer(True)

    # -- jobs -------------------------------------------------------------------

    @_endpoint("/submit")
    async def submit(self, request):
        job = validate.submit_request(self._args(request), self.executor)
        request.dssr_job = job.name
        submitted = await self.connector.submit(job)
        return json_answer([submitted.jobid, submitted.fscript])

    @_endpoint("/running")
    async def running(self, request):
        return json_answer([[job.name, job.jobid] for job in await self.connector.running()])

    @_endpoint("/queued")
    async def queued(self, request):
        return json_answer([[job.name, job.jobid] for job in await self.connector.queued()])

    @_endpoint("/runstatus")
    async def runstatus(self, request):
        ref = self._job(request)
        status = await self.connector.runstatus(ref)
        if status is None:
            return json_answer([None, None, None, None])
        return json_answer([list(status.nodes), status.elapsed, ref.path, None])

    @_endpoint("/exitstatus")
    async def exitstatus(self, request):
        return json_answer(exitstatus_body(await self.connector.exitstatus(self._job(request))))

    @_endpoint("/terminate")
    async def terminate(self, request):
        await self.connector.terminate(self._job(request))
        return json_answer(True)

    @_endpoint("/release")
    async def release(self, request):
        await self.connector.release(self._job(request))
        return json_answer(True)

    @_endpoint("/events")
    async def events(self, request):
        return json_answer(await self.connector.events(self._job(request)))

    # -- /request/... -----------------------------------------------------------

    @_endpoint("/request/<path:rest>")
    async def request(self, request, rest):
        segments = rest.split("/")
        query = self._args(request, required=False).get("qs")
        if segments == ["pvcls"]:
            entries = await self.connector.request_pvcls(
                validate.listing_path(query), validate.details(query)
            )
            return text_answer(listing_text(entries, validate.details(query)))
        if len(segments) != 4:
            raise NotFound("expected /request/pvcls or /request/<name>/<number>/<jobid>/<method>")
        ref = validate.job_path(segments[:3])
        request.dssr_job = ref.name
        return await self._job_request(ref, segments[3], query)

    async def _job_request(self, ref: JobRef, method: str, query) -> Answer:
        """Answer one ``/request/<name>/<number>/<jobid>/<method>``."""
        if method in ("shutdown", "abort"):
            await self.connector.terminate(ref)
        elif method == "info":
            return json_answer(asdict(await self.connector.request_info(ref)))
        elif method == "tail":
            text = await self.connector.request_tail(ref, validate.tail_lines(query))
            if text is None:
                raise NotFound("the job has no output yet")
            return text_answer(text)
        elif method == "screenshot":
            png = await self.connector.request_screenshot(ref)
            if png is None:
                raise NotFound("no screenshot can be taken of this job")
            return Answer(png, "image/png")
        return EMPTY

    @_app.handle_errors(HTTPException)
    def http_error(self, request, failure):
        """Routing errors (unknown path) as JSON rather than werkzeug's HTML."""
        error = failure.value
        _log.info("{method} {path} -> {code}", method=request.method.decode("latin-1"),
                  path=request.path.decode("latin-1"), code=error.code)
        request.setResponseCode(error.code)
        request.setHeader("Content-Type", "application/json")
        return json.dumps({"error": f"{error.name}: {request.path.decode('latin-1')}"}).encode()
