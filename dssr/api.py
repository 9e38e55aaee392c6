"""The legacy downstream HTTP API (docs/protocol.rst) as a Klein app over an ``IConnector``.

This module owns the HTTP side only: authentication, reading ``args``, validation
into typed requests, mapping ``DSSRError`` to status codes, and encoding answers in
the exact shapes upstream expects.
"""

import base64
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from klein import Klein, KleinRenderable
from klein.resource import KleinResource
from twisted.logger import Logger
from twisted.web.http_headers import Headers
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from werkzeug import exceptions as routing

from dssr import validate
from dssr.connectors.interfaces import IConnector
from dssr.errors import BadRequest, DSSRError, MethodNotAllowed, NotFound, Unauthorized, Unavailable
from dssr.exposure import host_name
from dssr.jobs import DirEntry, ExitStatus, JobRef
from dssr.metrics import CONTENT_TYPE, Metrics

_app = Klein()
_app.url_map.merge_slashes = False  # /request//pvcls is no route (werkzeug: a bare 308)
_log = Logger(namespace="dssr.api")

READ_ONLY = ("GET", "POST")  # endpoints without args that change nothing that matters
TAKES_ARGS = ("POST",)  # every endpoint reading args: upstream POSTs them in the body
_PUBLIC: set[str] = set()  # endpoints that need no server key (the probes)
NOT_READY = "the cluster is not reachable or its scheduler is not answering"
FORM = b"application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status code, content type and body bytes."""

    body: bytes
    content_type: str = "application/json"
    code: int = 200


def json_answer(value: object, code: int = 200) -> Answer:
    """``value`` encoded as compact JSON."""
    return Answer(json.dumps(value, separators=(",", ":")).encode(), code=code)


def text_answer(text: str) -> Answer:
    """``text`` as ``text/plain``."""
    return Answer(text.encode("utf-8"), "text/plain; charset=utf-8")


EMPTY = Answer(b"", "text/plain; charset=utf-8")


def termination_line(state: str) -> str:
    """The line upstream shows after a job's output."""
    return f"<< termination state: {state} -- see STDOUT for job errors >>"


def exitstatus_body(status: ExitStatus) -> list[object]:
    """``[rc, totaltime, [stdout, termination_line]]``; the list is empty for unknown jobs."""
    output = [] if status.state is None else [status.output, termination_line(status.state)]
    return [status.rc, status.totaltime, output]


def listing_text(entries: Iterable[DirEntry], details: bool) -> str:
    """``pvcls`` lines: ``/data/PATH`` (``/`` after directories), with details prefixed."""
    lines = []
    for entry in entries:
        path = "/data/" + entry.path.lstrip("/") + ("/" if entry.is_dir else "")
        lines.append(f"{entry.mtime} {entry.size} {path}" if details else path)
    return "".join(line + "\n" for line in lines)


def media_type(headers: Headers) -> bytes:
    """The request's ``Content-Type`` without parameters, lower-cased, as raw bytes."""
    value = (headers.getRawHeaders(b"content-type") or [b""])[0]
    return value.split(b";")[0].strip().lower()


def request_path(path: bytes) -> str:
    """The %-decoded path as Klein routes it (segment by segment), or a 400."""
    try:
        return "/".join(unquote_to_bytes(part).decode("utf-8") for part in path.split(b"/"))
    except UnicodeDecodeError:
        raise BadRequest("the path is not UTF-8", field="path") from None


def error_answer(error: DSSRError) -> "Answer":
    """A ``DSSRError`` as its JSON answer."""
    return json_answer(error.body(), error.status)


class AdmittingResource(Resource):
    """Runs ``DSSRApi.admit`` before Klein sees a request, answering refusals as JSON.

    The HTTP edge (``dssr.edge``) admits requests as soon as their headers are in;
    this covers the API served any other way (tests, an embedding Site).
    """

    isLeaf = True

    def __init__(self, api: "DSSRApi"):
        super().__init__()
        self._api = api
        self._inner = api.admitted_resource()

    def render(self, request: IRequest) -> KleinRenderable:
        try:
            self._api.admit(request.method, request.path, request.requestHeaders)
        except DSSRError as error:
            answer = error_answer(error)
            request.setResponseCode(answer.code)
            request.setHeader("Content-Type", answer.content_type)
            for name, value in error.headers().items():
                request.setHeader(name, value)
            return answer.body
        return self._inner.render(request)


# A route's handler: ``handler(api, request, **path_values)`` gives the answer.
Handler = Callable[..., Awaitable[Answer]]


def _endpoint(path: str, methods: tuple[str, ...] = TAKES_ARGS,
              public: bool = False) -> Callable[[Handler], Callable[..., Awaitable[bytes]]]:
    """Register a handler for ``methods`` on ``path``, wrapped by ``DSSRApi.serve``."""

    def decorate(handler: Handler) -> Callable[..., Awaitable[bytes]]:
        async def route(self: "DSSRApi", request: IRequest, **kwargs: str) -> bytes:
            return await self.serve(request, handler, kwargs)

        _app.route(path, methods=list(methods), endpoint=handler.__name__)(route)
        if public:
            _PUBLIC.add(handler.__name__)
        return route

    return decorate


class DSSRApi:
    """Routes of the legacy API, served by one connector."""

    app = _app

    def __init__(self, connector: IConnector, executor: str = "singularity", server_key: str = "",
                 open_metrics: bool = False, hosts: frozenset[str] | None = None):
        self.connector = connector
        self.executor = executor
        self.metrics = Metrics(connector)
        self._server_key = server_key.encode("utf-8")
        self._public = _PUBLIC | ({"metrics_text"} if open_metrics else set())
        self._hosts = hosts  # the Host names accepted (None: any); see exposure.allowed_hosts
        self._routes = self.app.url_map.bind("dssr")
        self._not_ready: str | None = None  # the last reason /ready failed, for the log

    def resource(self) -> AdmittingResource:
        """The twisted.web resource serving this API (``admit`` runs first)."""
        return AdmittingResource(self)

    def admitted_resource(self) -> KleinResource:
        """The resource for a server that calls ``admit`` on every request itself
        (``dssr.edge``, as soon as the headers are in): routing without a second check."""
        return self.app.resource()

    # -- plumbing -------------------------------------------------------------

    def admit(self, method: bytes, path: bytes, headers: Headers) -> None:
        """Refuse a request from its head alone: unknown path (404), method (405),
        credentials (401). Raises ``DSSRError``; reads no body.

        ``path`` is the raw (%-encoded) path without the query string.
        """
        try:
            endpoint, _ = self._routes.match(request_path(path), method=method.decode("ascii"))
        except routing.MethodNotAllowed as error:
            allowed = tuple(sorted(error.valid_methods or ()))
            raise MethodNotAllowed(f"this endpoint answers {', '.join(allowed)}",
                                   allowed) from None
        except routing.HTTPException:
            raise NotFound(f"no such endpoint: {path.decode('latin-1')[:200]}") from None
        if endpoint not in self._public:
            self._check_host(headers)
            self._authenticate(headers)

    def _check_host(self, headers: Headers) -> None:
        """Refuse a ``Host`` the listener is not for (DNS rebinding), when ``hosts`` is set;
        health probes (``/live``, ``/ready``) are answered whatever their ``Host``."""
        host = (headers.getRawHeaders(b"host") or [b""])[0].decode("latin-1")
        if self._hosts is not None and host and host_name(host) not in self._hosts:
            raise BadRequest(f"Host {host[:100]!r} is not a name of this DSSR (set "
                             f"JARVICE_SCHED_SERVER_KEY to serve other names)", field="Host")

    async def serve(self, request: IRequest, handler: Handler, kwargs: dict[str, str]) -> bytes:
        """Run ``handler`` and turn its answer or error into a response."""
        started = time.monotonic()
        reason = ""
        try:
            answer = await handler(self, request, **kwargs)
        except DSSRError as error:
            for name, value in error.headers().items():
                request.setHeader(name, value)
            answer = error_answer(error)
            reason = f": {error.message}"
        except (RecursionError, UnicodeError) as error:
            # Request data no validator caught (nesting, text that is not UTF-8):
            # the client's fault, so a 400 and one log line, not a traceback.
            _log.warn("{endpoint}: {kind} from request data answered 400",
                      endpoint=handler.__name__, kind=type(error).__name__)
            answer = error_answer(BadRequest(
                "args nest too deeply or hold text that is not UTF-8", field="args"))
        except Exception:
            _log.failure("Bug while serving {path}", path=request.path.decode("latin-1"))
            answer = json_answer({"error": "internal error, see the DSSR log"}, 500)
        request.setResponseCode(answer.code)
        request.setHeader("Content-Type", answer.content_type)
        elapsed = time.monotonic() - started
        self.metrics.requests.observe(handler.__name__, answer.code, elapsed)
        _log.info(
            "{method} {path} {job} -> {code} in {ms:.1f} ms{reason}",
            method=request.method.decode("latin-1"),
            path=request.path.decode("latin-1"),
            job=getattr(request, "dssr_job", "-"),
            code=answer.code,
            ms=round(elapsed * 1000, 1),
            reason=reason,
        )
        return answer.body

    def _authenticate(self, headers: Headers) -> None:
        """Check HTTP Basic credentials against the server key, in constant time.

        The header is read as raw bytes: a value that is not UTF-8 is just wrong.
        """
        if not self._server_key:
            return
        header = (headers.getRawHeaders(b"authorization") or [b""])[0]
        scheme, _, encoded = header.partition(b" ")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            given = b""
        if scheme.lower() != b"basic" or not hmac.compare_digest(given, self._server_key):
            raise Unauthorized("valid HTTP Basic credentials required")

    @staticmethod
    def _args(request: IRequest, required: bool = True) -> dict[str, Any]:
        """The request's ``args``, from the body only: the ``args`` field of a
        url-encoded form, or a JSON body. The query string is never read."""
        kind = media_type(request.requestHeaders)
        raw = None
        if kind in (FORM, b"application/json"):
            request.content.seek(0)
            body = request.content.read()
            raw = validate.form_field(body) if kind == FORM else body or None
        if raw is None and not required:
            return {}
        return validate.parse_args(raw)

    def _job(self, request: IRequest) -> JobRef:
        ref = validate.job_ref(self._args(request))
        request.dssr_job = ref.name  # type: ignore[attr-defined]  # DSSR's, for serve's log
        return ref

    # -- probes and legacy constants -----------------------------------------

    @_endpoint("/live", READ_ONLY, public=True)
    async def live(self, request: IRequest) -> Answer:
        return json_answer({"status": "OK"})

    @_endpoint("/ready", READ_ONLY, public=True)
    async def ready(self, request: IRequest) -> Answer:
        """Readiness with a generic reason: the details (accounts, addresses, paths)
        go to the log, once each time they change, not to whoever probes."""
        try:
            await self.connector.ready()
        except Unavailable as error:
            if error.message != self._not_ready:
                _log.warn("not ready: {reason}", reason=error.message)
            self._not_ready = error.message
            return json_answer({"status": "BAD", "reason": NOT_READY}, 503)
        if self._not_ready is not None:
            _log.info("ready again")
        self._not_ready = None
        return json_answer({"status": "OK"})

    @_endpoint("/metrics", READ_ONLY)
    async def metrics_text(self, request: IRequest) -> Answer:
        return Answer(self.metrics.exposition(), CONTENT_TYPE)

    @_endpoint("/gc", READ_ONLY)
    async def gc(self, request: IRequest) -> Answer:
        try:
            await self.connector.gc()
        except Unavailable as error:
            _log.warn("gc: cluster unavailable: {reason}", reason=error.message)
            return json_answer({"status": "BAD"}, 500)
        return json_answer({"status": "OK"})

    @_endpoint("/nodes", READ_ONLY)
    async def nodes(self, request: IRequest) -> Answer:
        return text_answer("true")

    @_endpoint("/online")
    async def online(self, request: IRequest) -> Answer:
        return json_answer(True)

    # -- jobs -------------------------------------------------------------------

    @_endpoint("/submit")
    async def submit(self, request: IRequest) -> Answer:
        job = validate.submit_request(self._args(request), self.executor)
        request.dssr_job = job.name  # type: ignore[attr-defined]  # as in _job
        submitted = await self.connector.submit(job)
        return json_answer([submitted.jobid, submitted.fscript])

    @_endpoint("/running", READ_ONLY)
    async def running(self, request: IRequest) -> Answer:
        return json_answer([[job.name, job.jobid] for job in await self.connector.running()])

    @_endpoint("/queued", READ_ONLY)
    async def queued(self, request: IRequest) -> Answer:
        return json_answer([[job.name, job.jobid] for job in await self.connector.queued()])

    @_endpoint("/runstatus")
    async def runstatus(self, request: IRequest) -> Answer:
        ref = self._job(request)
        status = await self.connector.runstatus(ref)
        if status is None:
            return json_answer([None, None, None, None])
        return json_answer([list(status.nodes), status.elapsed, ref.path, None])

    @_endpoint("/exitstatus")
    async def exitstatus(self, request: IRequest) -> Answer:
        return json_answer(exitstatus_body(await self.connector.exitstatus(self._job(request))))

    @_endpoint("/terminate")
    async def terminate(self, request: IRequest) -> Answer:
        await self.connector.terminate(self._job(request))
        return json_answer(True)

    @_endpoint("/release")
    async def release(self, request: IRequest) -> Answer:
        await self.connector.release(self._job(request))
        return json_answer(True)

    @_endpoint("/events")
    async def events(self, request: IRequest) -> Answer:
        return json_answer(await self.connector.events(self._job(request)))

    # -- /request/... -----------------------------------------------------------

    @_endpoint("/request/<path:rest>")
    async def request(self, request: IRequest, rest: str) -> Answer:
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
        request.dssr_job = ref.name  # type: ignore[attr-defined]  # as in _job
        return await self._job_request(ref, segments[3], query)

    async def _job_request(self, ref: JobRef, method: str, query: Any) -> Answer:
        """Answer one ``/request/<name>/<number>/<jobid>/<method>``."""
        if method in ("shutdown", "abort"):
            await self.connector.terminate(ref)
        elif method == "info":
            return json_answer(asdict(await self.connector.request_info(ref)))
        elif method == "connect":
            access = await self.connector.request_connect(ref)
            if access is not None:
                return json_answer(asdict(access))
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
