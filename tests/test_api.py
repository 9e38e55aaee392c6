"""The legacy API through a real HTTP request/response cycle (StubTreq) over a fake connector."""

import base64
import json
from urllib.parse import quote

from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.logger import capturedLogs, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from dssr import __version__, exposure
from dssr.api import DSSRApi
from dssr.errors import BadRequest, NotYet, Unavailable
from dssr.metrics import Sample
from tests.fakes import FakeConnector

SCRIPT = base64.b64encode(b"JARVICE_CMD=echo hi\n{DOWNSTREAM_PARAMETERS}\n").decode()
SUBMIT = {"name": "job-1", "number": 7, "nodes": 2, "hpc_script": {"singularity": SCRIPT},
          "bearer": "tok"}
REF = {"name": "job-1", "number": 7, "jobid": "100"}


class ApiCase(SynchronousTestCase):
    """Calls the API in memory and decodes answers."""

    server_key = ""

    def setUp(self):
        self.connector = FakeConnector()
        self.api = DSSRApi(self.connector, server_key=self.server_key)
        self.http = StubTreq(self.api.resource())

    def call(self, path, args=None, method="POST", raw=None, json_body=None, headers=None,
             form=None):
        """Send one request; return (code, headers, body bytes). ``form`` is a raw
        url-encoded body."""
        kwargs = {"headers": headers or {}}
        if form is not None:
            kwargs["data"] = form
            kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded",
                                 **kwargs["headers"]}
        elif json_body is not None:
            kwargs["data"] = json_body
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs["headers"]}
        elif raw is not None:
            kwargs["data"] = {"args": raw}
        elif args is not None:
            kwargs["data"] = {"args": json.dumps(args)}
        response = self.successResultOf(
            self.http.request(method, "http://dssr.test" + path, **kwargs))
        body = self.successResultOf(response.content())
        return response.code, response.headers, body

    def json(self, path, args=None, expect=200, **kwargs):
        """Send one request and return its decoded JSON body, checking the status."""
        code, headers, body = self.call(path, args, **kwargs)
        self.assertEqual((code, body[:0]), (expect, b""), body)
        self.assertEqual(headers.getRawHeaders("content-type"), ["application/json"])
        return json.loads(body)

    def submit_job(self):
        return self.json("/submit", SUBMIT)[0]


class SuccessShapeTests(ApiCase):
    """Every endpoint answers in the shape upstream expects."""

    def test_live_and_ready(self):
        self.assertEqual(self.json("/live"), {"status": "OK"})
        self.assertEqual(self.json("/ready"), {"status": "OK"})

    def test_gc(self):
        self.assertEqual(self.json("/gc"), {"status": "OK"})
        self.assertEqual(self.connector.calls, [("gc",)])

    def test_nodes_is_text_true(self):
        code, headers, body = self.call("/nodes")
        self.assertEqual((code, body), (200, b"true"))
        self.assertTrue(headers.getRawHeaders("content-type")[0].startswith("text/plain"))

    def test_online(self):
        self.assertIs(self.json("/online", {"anything": 1}), True)

    def test_submit_returns_jobid_and_fscript(self):
        self.assertEqual(self.json("/submit", SUBMIT), ["100", "fscript"])
        (name, request), = self.connector.calls
        self.assertEqual(name, "submit")
        self.assertEqual((request.name, request.number, request.nodes, request.bearer),
                         ("job-1", 7, 2, "tok"))
        self.assertEqual(request.script, "JARVICE_CMD=echo hi\n{DOWNSTREAM_PARAMETERS}\n")
        self.assertFalse(request.held)

    def test_submit_as_json_body(self):
        self.assertEqual(self.json("/submit", json_body=json.dumps(SUBMIT)), ["100", "fscript"])

    def test_running_and_queued(self):
        jobid = self.submit_job()
        self.assertEqual(self.json("/queued"), [["job-1", jobid]])
        self.assertEqual(self.json("/running"), [])
        self.connector.jobs[jobid] = ("job-1", "RUNNING")
        self.assertEqual(self.json("/running", method="GET"), [["job-1", jobid]])
        self.assertEqual(self.json("/queued"), [])

    def test_runstatus(self):
        self.submit_job()
        self.assertEqual(self.json("/runstatus", REF),
                         [["node1", "node2"], "01:02:03", "job-1/7/100", None])

    def test_runstatus_unknown(self):
        self.assertEqual(self.json("/runstatus", REF), [None, None, None, None])

    def test_exitstatus(self):
        self.submit_job()
        self.assertEqual(
            self.json("/exitstatus", REF),
            [0, "00:00:10",
             ["hello", "<< termination state: COMPLETED -- see STDOUT for job errors >>"]])

    def test_exitstatus_unknown(self):
        self.assertEqual(self.json("/exitstatus", REF), [-9, "00:00:00", []])

    def test_terminate_release_events(self):
        self.assertIs(self.json("/terminate", REF), True)
        self.assertIs(self.json("/release", REF), True)
        self.assertEqual(self.json("/events", REF), "JobId=100 JobState=RUNNING")
        self.assertEqual([call[0] for call in self.connector.calls],
                         ["terminate", "release", "events"])

    def test_request_ping_connect_unknown_method(self):
        for method in ("ping", "connect", "whatever"):
            code, _, body = self.call(f"/request/job-1/7/100/{method}")
            self.assertEqual((code, body), (200, b""))
        self.assertEqual([call[0] for call in self.connector.calls], ["request_connect"])

    def test_request_connect_of_a_running_app(self):
        self.assertEqual(self.json("/request/job-1/7/101/connect"),
                         {"address": "https://app.invalid/?t=1", "password": "pw"})

    def test_request_shutdown_and_abort_terminate(self):
        for method in ("shutdown", "abort"):
            code, _, body = self.call(f"/request/job-1/7/100/{method}")
            self.assertEqual((code, body), (200, b""))
        self.assertEqual([call[0] for call in self.connector.calls], ["terminate", "terminate"])

    def test_request_info(self):
        self.assertEqual(self.json("/request/job-1/7/100/info"),
                         {"about": "", "help": "", "url": "https://example.invalid/",
                          "actions": {}})

    def test_request_tail(self):
        self.submit_job()
        code, headers, body = self.call("/request/job-1/7/100/tail", {"qs": {"lines": ["3"]}})
        self.assertEqual((code, body), (200, b"line 198\nline 199\nline 200\n"))
        self.assertTrue(headers.getRawHeaders("content-type")[0].startswith("text/plain"))
        code, _, body = self.call("/request/job-1/7/100/tail")
        self.assertEqual(body.count(b"\n"), 100)

    def test_request_tail_without_output_is_404(self):
        self.json("/request/job-1/7/100/tail", expect=404)

    def test_request_screenshot_none_is_404(self):
        self.json("/request/job-1/7/100/screenshot", expect=404)

    def test_pvcls(self):
        code, _, body = self.call("/request/pvcls", {"qs": {"path": ["/x"]}})
        self.assertEqual((code, body), (200, b"/data/a/\n/data/a/b.txt\n"))
        self.assertEqual(self.connector.calls[-1], ("request_pvcls", "/x", False))
        code, _, body = self.call("/request/pvcls", {"qs": {"path": ["/x"], "details": ["true"]}})
        self.assertEqual(body, b"1700000000 4096 /data/a/\n1700000001 12 /data/a/b.txt\n")

    def test_pvcls_missing_directory(self):
        self.assertEqual(self.json("/request/pvcls", {"qs": {"path": ["/missing"]}}, expect=404),
                         {"error": "no directory /missing", "field": "qs.path"})

    def test_unknown_route_is_json_404(self):
        body = self.json("/no/such/thing", expect=404)
        self.assertIn("/no/such/thing", body["error"])


class FailureTests(ApiCase):
    """Connector failures become the documented codes, never a wrong answer."""

    def test_unavailable_list_is_503_not_empty(self):
        self.connector.failure = Unavailable("squeue failed: slurmctld down")
        for path in ("/running", "/queued"):
            self.assertEqual(self.json(path, expect=503),
                             {"error": "squeue failed: slurmctld down"})

    def test_gc_bad_is_500(self):
        self.connector.failure = Unavailable("no ssh")
        self.assertEqual(self.json("/gc", expect=500), {"status": "BAD"})

    def test_ready_bad_is_503_with_a_generic_reason(self):
        self.connector.failure = Unavailable("SSH connecting: dssr-svc@login1:22 refused")
        for _ in range(3):
            self.assertEqual(
                self.json("/ready", expect=503),
                {"status": "BAD",
                 "reason": "the cluster is not reachable or its scheduler is not answering"})
        self.connector.failure = None
        self.assertEqual(self.json("/ready"), {"status": "OK"})

    def test_ready_details_are_logged_when_they_change(self):
        events = []
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        globalLogPublisher.addObserver(events.append)
        for reason in ("SSH down: refused", "SSH down: refused", "squeue failed"):
            self.connector.failure = Unavailable(reason)
            self.json("/ready", expect=503)
        self.connector.failure = None
        self.json("/ready")
        self.json("/ready")
        logged = [formatEvent(event) for event in events
                  if event.get("log_namespace") == "dssr.api"
                  and "ready" in event.get("log_format", "")]
        self.assertEqual(logged, ["not ready: SSH down: refused", "not ready: squeue failed",
                                  "ready again"])

    def test_connector_refusal_is_its_4xx(self):
        self.connector.failure = BadRequest("unknown pseudo-device foo", field="hpc_script")
        self.assertEqual(self.json("/submit", SUBMIT, expect=400),
                         {"error": "unknown pseudo-device foo", "field": "hpc_script"})

    def test_a_job_not_ended_yet_is_503_with_retry_after(self):
        self.connector.failure = NotYet("job 7 is RUNNING, it has not ended: ask again")
        code, headers, body = self.call("/exitstatus", {"name": "job-1", "number": 7,
                                                        "jobid": "7"})
        self.assertEqual((code, headers.getRawHeaders("Retry-After")), (503, ["5"]))
        self.assertEqual(json.loads(body), {"error": "job 7 is RUNNING, it has not ended: "
                                                     "ask again"})

    def test_bug_is_500_json_without_traceback(self):
        self.connector.failure = ZeroDivisionError("secret internals")
        code, _, body = self.call("/running")
        self.assertEqual(code, 500)
        self.assertEqual(json.loads(body), {"error": "internal error, see the DSSR log"})
        self.assertNotIn(b"Traceback", body)
        self.assertNotIn(b"secret", body)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class AuthTests(ApiCase):
    """With a server key set, only the right Basic credentials get through."""

    server_key = "upstream:s3cret"

    def basic(self, credentials):
        return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}

    def test_missing_credentials(self):
        code, headers, body = self.call("/running")
        self.assertEqual(code, 401)
        self.assertEqual(headers.getRawHeaders("www-authenticate"), ['Basic realm="dssr"'])
        self.assertEqual(json.loads(body), {"error": "valid HTTP Basic credentials required"})
        self.assertEqual(self.connector.calls, [])

    def test_wrong_credentials(self):
        for header in (self.basic(b"upstream:wrong"), self.basic(b"other:s3cret"),
                       self.basic(b"upstream:s3cret "), {"Authorization": "Bearer x"},
                       {"Authorization": "Basic !!!notbase64"},
                       {b"Authorization": b"Basic \xff\xfe"},
                       {b"Authorization": b"\xc3\xa9 " + base64.b64encode(b"upstream:s3cret")}):
            code, headers, _ = self.call("/submit", SUBMIT, headers=header)
            self.assertEqual(code, 401, header)
            self.assertEqual(headers.getRawHeaders("content-type"), ["application/json"])
        self.assertEqual(self.connector.calls, [])

    def test_metrics_need_credentials(self):
        code, _, _ = self.call("/metrics", method="GET")
        self.assertEqual(code, 401)
        code, _, _ = self.call("/metrics", method="GET", headers=self.basic(b"upstream:s3cret"))
        self.assertEqual(code, 200)

    def test_right_credentials(self):
        code, _, body = self.call("/running", headers=self.basic(b"upstream:s3cret"))
        self.assertEqual((code, body), (200, b"[]"))

    def test_probes_stay_open(self):
        self.assertEqual(self.json("/live"), {"status": "OK"})
        self.assertEqual(self.json("/ready"), {"status": "OK"})


def _args(**changes):
    return {**SUBMIT, **changes}


def _without(field):
    return {k: v for k, v in SUBMIT.items() if k != field}


def _ref(**changes):
    return {**REF, **changes}


NOT_UTF8 = base64.b64encode(b"\xff\xfe").decode()
HUGE_CORES = base64.b64encode(
    b"JARVICE_CPU_CORES=" + b"9" * 4299 + b"\n{DOWNSTREAM_PARAMETERS}\n").decode()

# (path, how the args are sent, expected status, expected field)
BAD_INPUTS = [
    ("/submit", {"raw": None}, 400, "args"),
    ("/submit", {"raw": "{"}, 400, "args"),
    ("/submit", {"raw": "[1, 2]"}, 400, "args"),
    ("/submit", {"raw": '"text"'}, 400, "args"),
    ("/submit", {"json_body": "{not json"}, 400, "args"),
    ("/submit", {"raw": "[" * 100000}, 400, "args"),
    ("/submit", {"args": _without("name")}, 400, "name"),
    ("/submit", {"args": _args(name=123)}, 400, "name"),
    ("/submit", {"args": _args(name="")}, 400, "name"),
    ("/submit", {"args": _args(name="$(touch /tmp/x)")}, 400, "name"),
    ("/submit", {"args": _args(name="a b")}, 400, "name"),
    ("/submit", {"args": _args(name="-rf")}, 400, "name"),
    ("/submit", {"args": _args(name="a" * 256)}, 400, "name"),
    ("/submit", {"args": _args(name="a;b")}, 400, "name"),
    ("/submit", {"args": _args(name="jöb")}, 400, "name"),
    ("/submit", {"args": _args(name="../etc")}, 400, "name"),
    ("/submit", {"args": _without("number")}, 400, "number"),
    ("/submit", {"args": _args(number=0)}, 400, "number"),
    ("/submit", {"args": _args(number=-1)}, 400, "number"),
    ("/submit", {"args": _args(number="5")}, 400, "number"),
    ("/submit", {"args": _args(number=True)}, 400, "number"),
    ("/submit", {"args": _args(number=1.5)}, 400, "number"),
    ("/submit", {"args": _args(number=2**64)}, 400, "number"),
    ("/submit", {"args": _without("nodes")}, 400, "nodes"),
    ("/submit", {"args": _args(nodes=0)}, 400, "nodes"),
    ("/submit", {"args": _args(nodes="2")}, 400, "nodes"),
    ("/submit", {"args": _without("hpc_script")}, 400, "hpc_script"),
    ("/submit", {"args": _args(hpc_script="ZWNobw==")}, 400, "hpc_script"),
    ("/submit", {"args": _args(hpc_script={"singularity": 5})}, 400, "hpc_script"),
    ("/submit", {"args": _args(hpc_script={"docker": SCRIPT})}, 400, "hpc_script"),
    ("/submit", {"args": _args(hpc_script={"singularity": "!!not base64"})}, 400, "hpc_script"),
    ("/submit", {"args": _args(hpc_script={"singularity": NOT_UTF8})}, 400, "hpc_script"),
    ("/submit", {"args": _args(bearer=5)}, 400, "bearer"),
    ("/submit", {"args": _args(held="yes")}, 400, "held"),
    ("/runstatus", {"raw": None}, 400, "args"),
    ("/runstatus", {"args": _ref(jobid="1; rm -rf /")}, 400, "jobid"),
    ("/runstatus", {"args": _ref(jobid="")}, 400, "jobid"),
    ("/runstatus", {"args": _ref(jobid="abc")}, 400, "jobid"),
    ("/runstatus", {"args": {"name": "job-1", "number": 7}}, 400, "jobid"),
    ("/runstatus", {"json_body": "[]"}, 400, "args"),
    ("/exitstatus", {"args": _ref(name="`id`")}, 400, "name"),
    ("/terminate", {"args": _ref(number=None)}, 400, "number"),
    ("/release", {"args": _ref(jobid=[1])}, 400, "jobid"),
    ("/events", {"args": _ref(jobid="12 13")}, 400, "jobid"),
    ("/request/job-1/0/100/tail", {}, 400, "number"),
    ("/request/job-1/x1/100/tail", {}, 400, "number"),
    ("/request/job-1/7/x/tail", {}, 400, "jobid"),
    ("/request/$(id)/7/100/tail", {}, 400, "name"),
    ("/request/job-1/7/100/tail", {"args": {"qs": {"lines": ["abc"]}}}, 400, "qs.lines"),
    ("/request/job-1/7/100/tail", {"args": {"qs": {"lines": ["0"]}}}, 400, "qs.lines"),
    ("/request/job-1/7/100/tail", {"args": {"qs": {"lines": ["100000"]}}}, 400, "qs.lines"),
    ("/request/job-1/7/100/tail", {"args": {"qs": {"lines": [5]}}}, 400, "qs.lines"),
    ("/request/job-1/7/100/tail", {"args": {"qs": "lines=5"}}, 400, "qs"),
    ("/request/pvcls", {"args": {"qs": {"path": ["../etc"]}}}, 400, "qs.path"),
    ("/request/pvcls", {"args": {"qs": {"path": ["/a/../../etc"]}}}, 400, "qs.path"),
    ("/request/pvcls", {"args": {"qs": {"path": ["a\x00b"]}}}, 400, "qs.path"),
    ("/request/job-1/7/100", {}, 404, None),
    # bounded before any parsing: digit strings, nesting, value counts, form fields
    ("/request/job-1/" + "1" * 5000 + "/100/tail", {}, 400, "number"),
    ("/request/job-1/7/100/tail", {"args": {"qs": {"lines": ["1" * 5000]}}}, 400, "qs.lines"),
    ("/submit", {"args": _args(nodes=100_001)}, 400, "nodes"),
    ("/submit", {"args": _args(hpc_script={"singularity": HUGE_CORES})}, 400, "hpc_script"),
    ("/submit", {"raw": "[" * 33 + "]" * 33}, 400, "args"),
    ("/submit", {"json_body": '{"a":' * 40 + "1" + "}" * 40}, 400, "args"),
    ("/submit", {"raw": "[" + "[]," * 5000 + "[]]"}, 400, "args"),
    ("/submit", {"raw": '{"name": 1' + "0" * 5000 + "}"}, 400, "args"),
    ("/submit", {"form": "&".join(["x=1"] * 17) + "&args={}"}, 400, "args"),
    ("/submit", {"form": "args=%7B%7"}, 400, "args"),
    ("/submit", {"form": "other=1"}, 400, "args"),
    ("/submit", {"json_body": ""}, 400, "args"),
    ("/submit", {"raw": '{"name": "job-1", "bearer": "\\ud800"}'}, 400, "args"),
    ("/request/pvcls", {"raw": '{"qs": {"path": ["/a\\udfff"]}}'}, 400, "args"),
    ("/%FF", {}, 400, "path"),
]


class BadInputTests(ApiCase):
    """Every bad input gets a 4xx JSON error naming the field, and reaches no connector."""

    def test_table_is_large_enough(self):
        self.assertGreaterEqual(len(BAD_INPUTS), 30)

    def test_bad_inputs(self):
        for path, how, status, field in BAD_INPUTS:
            with self.subTest(path=path, how=how):
                self.connector.calls.clear()
                code, headers, body = self.call(path, **how)
                self.assertEqual(code, status, (path, how, body))
                self.assertEqual(headers.getRawHeaders("content-type"), ["application/json"])
                answer = json.loads(body)
                self.assertEqual(answer.get("field"), field, answer)
                self.assertIsInstance(answer["error"], str)
                self.assertEqual(self.connector.calls, [], (path, how))


class GuardTests(ApiCase):
    """What no validator caught is still the client's 400, never a 500."""

    def test_recursion_and_unicode_errors_are_400(self):
        for error in (RecursionError("maximum recursion depth exceeded"),
                      UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")):
            self.connector.failure = error
            self.assertEqual(self.json("/submit", SUBMIT, expect=400)["field"], "args")

    def test_body_types_other_than_form_and_json_carry_no_args(self):
        for content_type in ("text/plain", "multipart/form-data; boundary=x", "\xff"):
            response = self.successResultOf(self.http.request(
                "POST", "http://dssr.test/runstatus", data=json.dumps(REF).encode(),
                headers={"Content-Type": content_type}))
            self.assertEqual(response.code, 400)
        self.assertEqual(self.connector.calls, [])


class MetricsTests(ApiCase):
    """``/metrics`` is valid Prometheus text and counts what the API did."""

    def scrape(self, **kwargs):
        code, headers, body = self.call("/metrics", method="GET", **kwargs)
        self.assertEqual(code, 200)
        self.assertTrue(headers.getRawHeaders("content-type")[0].startswith("text/plain"))
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body.decode())
                for s in family.samples}

    def test_counts_requests_by_endpoint_and_code(self):
        self.json("/running")
        self.json("/running")
        self.call("/submit", {"name": "$(x)"})
        samples = self.scrape()
        self.assertEqual(samples[("dssr_http_requests_total",
                                  (("code", "200"), ("endpoint", "running")))], 2)
        self.assertEqual(samples[("dssr_http_requests_total",
                                  (("code", "400"), ("endpoint", "submit")))], 1)
        self.assertEqual(samples[("dssr_http_request_duration_seconds_count",
                                  (("endpoint", "running"),))], 2)

    def test_build_info_names_the_version(self):
        self.assertEqual(self.scrape()[("dssr_build_info", (("version", __version__),))], 1)

    def test_connector_samples_are_shown(self):
        self.connector.metrics = lambda: [
            Sample("dssr_queue_snapshots", "counter", "squeue calls", 3),
            Sample("dssr_jobs", "gauge", "jobs", 2, {"state": "RUNNING"})]
        samples = self.scrape()
        self.assertEqual(samples[("dssr_queue_snapshots_total", ())], 3)
        self.assertEqual(samples[("dssr_jobs", (("state", "RUNNING"),))], 2)

    def test_other_sources_are_shown_too(self):
        self.api.metrics.add(lambda: [Sample("dssr_proxy_open_streams", "gauge", "open", 4)])
        self.assertEqual(self.scrape()[("dssr_proxy_open_streams", ())], 4)


class OpenMetricsTests(ApiCase):
    server_key = "upstream:s3cret"

    def setUp(self):
        super().setUp()
        self.api = DSSRApi(self.connector, server_key=self.server_key, open_metrics=True)
        self.http = StubTreq(self.api.resource())

    def test_metrics_open_when_asked(self):
        code, _, _ = self.call("/metrics", method="GET")
        self.assertEqual(code, 200)
        code, _, _ = self.call("/running", method="GET")
        self.assertEqual(code, 401)


class MethodTests(ApiCase):
    """Read-only endpoints answer GET and POST; every endpoint taking args only POST."""

    def test_read_only_endpoints_answer_get(self):
        for path in ("/live", "/ready", "/metrics", "/gc", "/nodes", "/running", "/queued"):
            code, _, _ = self.call(path, method="GET")
            self.assertEqual(code, 200, path)

    def test_endpoints_with_args_answer_post_only(self):
        for path in ("/submit", "/runstatus", "/exitstatus", "/terminate", "/online",
                     "/release", "/events", "/request/pvcls", "/request/job-1/7/100/tail"):
            for method in ("GET", "PUT", "DELETE"):
                code, headers, body = self.call(path, method=method)
                self.assertEqual((code, headers.getRawHeaders("allow")), (405, ["POST"]),
                                 (path, method))
                self.assertIn("error", json.loads(body))
        self.assertEqual(self.connector.calls, [])

    def test_args_never_come_from_the_query_string(self):
        query = "?args=" + quote(json.dumps(SUBMIT))
        self.assertEqual(self.json("/submit" + query, expect=400)["field"], "args")
        self.assertEqual(self.connector.calls, [])

    def test_other_methods_on_read_only_endpoints(self):
        code, headers, _ = self.call("/running", method="DELETE")
        self.assertEqual((code, headers.getRawHeaders("allow")), (405, ["GET, HEAD, POST"]))


class HostTests(ApiCase):
    """Without a server key, only the names of the listener are served (DNS rebinding)."""

    def setUp(self):
        super().setUp()
        self.api = DSSRApi(self.connector,
                           hosts=exposure.allowed_hosts("tcp:5000:interface=127.0.0.1"))
        self.http = StubTreq(self.api.resource())

    def test_a_rebound_name_is_refused_naming_host(self):
        self.assertEqual(self.json("/live", method="GET", headers={"Host": "rebind.example"}),
                         {"status": "OK"})  # health probes come with any Host
        self.assertEqual(self.json("/running", method="GET", expect=400,
                                   headers={"Host": "rebind.attacker.example"}),
                         {"error": "Host 'rebind.attacker.example' is not a name of this DSSR "
                                   "(set JARVICE_SCHED_SERVER_KEY to serve other names)",
                          "field": "Host"})
        self.assertEqual(self.connector.calls, [])

    def test_the_listeners_names_are_served(self):
        for host in ("localhost", "localhost:5000", "127.0.0.1:5000", "[::1]:5000", "LOCALHOST"):
            self.assertEqual(self.json("/running", method="GET", headers={"Host": host}), [])


class RequestLogTests(ApiCase):
    def test_a_refusal_is_logged_with_its_reason_and_ms_rounded(self):
        with capturedLogs() as events:
            self.json("/submit", {"name": "bad name!", "number": 1}, expect=400)
            self.json("/running", method="GET")
        lines = [e for e in events if e.get("log_namespace") == "dssr.api"]
        refused, served = lines[-2:]
        self.assertRegex(formatEvent(refused),
                         r"^POST /submit - -> 400 in \d+\.\d ms: .*name")
        self.assertRegex(formatEvent(served), r"^GET /running - -> 200 in \d+\.\d ms$")
        self.assertEqual(refused["ms"], round(refused["ms"], 1))
