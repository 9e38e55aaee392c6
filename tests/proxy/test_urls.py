"""JARVICE_JOBS_DOMAIN forms, routes, and the access token in URLs."""

from twisted.trial.unittest import SynchronousTestCase

from dssr.proxy.tokens import AccessTokens
from dssr.proxy.urls import (
    JobsAddresses,
    JobsURL,
    app_url,
    parse_jobs_domain,
    with_token,
    without_token,
)


class FormsTests(SynchronousTestCase):
    def test_full_url_used_as_written(self):
        jobs = parse_jobs_domain("http://127.0.0.1:8081/job$")
        self.assertEqual(jobs, JobsURL("http", "127.0.0.1:8081", "/job$/"))
        self.assertEqual(jobs.url(42), "http://127.0.0.1:8081/job42/")
        self.assertEqual(jobs.number("127.0.0.1:8081", "/job42/static/app.js"), 42)
        self.assertEqual(jobs.number("anything", "/job42/"), 42)
        for path in ("/job/", "/jobx/", "/other/job42/", "/job42"):
            self.assertIsNone(jobs.number("127.0.0.1:8081", path))

    def test_path_based(self):
        jobs = parse_jobs_domain("jobs.example.com/path/$")
        self.assertEqual(jobs.url(7), "https://jobs.example.com/path/7/")

    def test_host_based(self):
        jobs = parse_jobs_domain("Jobs.Example.com")
        self.assertEqual(jobs.url(7), "https://job-7.jobs.example.com/")
        self.assertEqual(jobs.number("JOB-7.jobs.example.com", "/x"), 7)
        self.assertIsNone(jobs.number("job-7.jobs.example.com.evil.org", "/"))
        self.assertIsNone(jobs.number("job-x.jobs.example.com", "/"))

    def test_refused(self):
        for text in ("", "ftp://x/$", "http://x/job", "http://x/$/$", "http://job-$.x/p$"):
            self.assertRaises(ValueError, parse_jobs_domain, text)


class TokenTests(SynchronousTestCase):
    def test_addresses_carry_the_token_dssr_issued(self):
        tokens = AccessTokens(b"k" * 32)
        jobs = JobsAddresses(parse_jobs_domain("http://h/job$"), tokens)
        url = jobs.address("123", 1)
        self.assertEqual(url, f"http://h/job1/?dssr_token={tokens.issue('123', 1)}")
        self.assertEqual(without_token(url.partition("h")[2])[1], tokens.issue("123", 1))
        self.assertEqual(jobs.address("123", 1, "https://%PUBLICADDR%/v.html?p=%NIMBIXPASSWD%",
                                      "pw"),
                         f"http://h/job1/v.html?p=pw&dssr_token={tokens.issue('123', 1)}")

    def test_after_the_query_and_before_the_fragment(self):
        self.assertEqual(with_token("http://h/v.html?a=b#x", "1.t"),
                         "http://h/v.html?a=b&dssr_token=1.t#x")
        self.assertEqual(with_token("http://h/v.html#x?y", "1.t"),
                         "http://h/v.html?dssr_token=1.t#x?y")
        self.assertEqual(without_token("/v.html?a=b&dssr_token=1.t"), ("/v.html?a=b", "1.t"))

    def test_taken_out_of_a_target(self):
        self.assertEqual(without_token("/job1/?dssr_token=1.abc&a=b"), ("/job1/?a=b", "1.abc"))
        self.assertEqual(without_token("/job1/?dssr_token=1.abc"), ("/job1/", "1.abc"))
        self.assertEqual(without_token("/job1/?a=b"), ("/job1/?a=b", None))
        self.assertEqual(without_token("/job1/"), ("/job1/", None))
        self.assertEqual(without_token("/j/?q=a%20b+c&dssr_token=1.x&dssr_token=2.y&z"),
                         ("/j/?q=a%20b+c&z", "1.x"))


class AppURLTests(SynchronousTestCase):
    ROOT = "https://job-7.jobs.example.com/"

    def test_template_below_the_job_s_root(self):
        template = "https://%PUBLICADDR%/vnc.html?password=%NIMBIXPASSWD%&autoconnect=1\n"
        self.assertEqual(app_url(template, self.ROOT, "p/w+"),
                         self.ROOT + "vnc.html?password=p%2Fw%2B&autoconnect=1")
        self.assertEqual(app_url("http://%PUBLICADDR%/lab#tree", "http://h:1/job7/", "p"),
                         "http://h:1/job7/lab#tree")
        self.assertEqual(app_url("https://%PUBLICADDR%", self.ROOT, "p"), self.ROOT)
        self.assertEqual(app_url("https://%PUBLICADDR%?token=%NIMBIXPASSWD%", self.ROOT, "p"),
                         self.ROOT + "?token=p")

    def test_anything_else_is_the_root(self):
        for template in ("", "garbage", "https://%PUBLICADDR%:8443/", "https://%PUBLICADDR%.evil/",
                         "https://%PUBLICADDR%@evil.org/", "https://%PUBLICADDR%/a b",
                         "https://evil.org/"):
            self.assertEqual(app_url(template, self.ROOT, "p"), self.ROOT, template)
