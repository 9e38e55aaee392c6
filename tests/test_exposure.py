"""A real connector is not served to the network without a server key (or an opt-out)."""

from twisted.trial.unittest import SynchronousTestCase

from dssr import exposure
from dssr.settings import load


class EndpointPartsTests(SynchronousTestCase):
    def test_split_like_twisted(self):
        self.assertEqual(exposure.endpoint_parts(r"tcp:5000:interface=\:\:1"),
                         (["tcp", "5000"], {"interface": "::1"}))
        self.assertEqual(exposure.endpoint_parts("tcp:5000:a=b=c:x"),
                         (["tcp", "5000", "x"], {"a": "b=c"}))
        self.assertEqual(exposure.endpoint_parts(""), ([""], {}))


class ReachableAddressTests(SynchronousTestCase):
    def test_local_only(self):
        for endpoint in ("tcp:5000:interface=127.0.0.1", "tcp:5000:127.0.0.2",
                         r"tcp:5000:interface=\:\:1", r"tcp6:5000:interface=\:\:1",
                         "tcp6:5000:50:localhost", "tcp:5000:interface=LocalHost",
                         r"tcp:5000:interface=\:\:ffff\:127.0.0.1",
                         "ssl:8443:privateKey=k.pem:certKey=c.pem:interface=127.0.0.1",
                         "ssl:8443:k.pem:c.pem:TLSv1_2_METHOD:127.0.0.1",
                         "unix:/run/dssr/api.sock", "unix:address=/run/dssr.sock:mode=600"):
            self.assertIsNone(exposure.reachable_address(endpoint), endpoint)

    def test_every_interface(self):
        for endpoint in ("tcp:5000", "tcp:5000:interface=0.0.0.0", r"tcp:5000:interface=\:\:",
                         "tcp6:5000", r"tcp6:5000:interface=\:\:", "ssl:8443",
                         "ssl:8443:privateKey=k.pem", r"tcp:5000:interface=\:\:ffff\:0.0.0.0",
                         "tcp:5000:interface=::1"):  # unescaped: not ::1 at all
            self.assertEqual(exposure.reachable_address(endpoint), "all interfaces", endpoint)

    def test_one_other_address(self):
        for endpoint, address in (("tcp:5000:interface=10.0.0.5", "10.0.0.5"),
                                  ("ssl:8443:privateKey=k.pem:interface=192.0.2.1", "192.0.2.1"),
                                  (r"tcp6:5000:interface=fe80\:\:1%eth0", "fe80::1%eth0"),
                                  ("tcp:5000:interface=login1.example.org",
                                   "login1.example.org")):
            self.assertEqual(exposure.reachable_address(endpoint), address)

    def test_opaque_endpoints_count_as_reachable(self):
        self.assertIn("systemd", exposure.reachable_address("systemd:domain=INET:index=0"))
        self.assertIn("malformed", exposure.reachable_address(""))


class PolicyTests(SynchronousTestCase):
    def settings(self, **values):
        return load().replace(connector="slurm", **values)

    def test_default_is_loopback(self):
        self.assertEqual(load().listen, "tcp:5000:interface=127.0.0.1")
        self.assertIsNone(exposure.refusal(self.settings(), True))

    def test_open_without_key_is_refused_in_one_line(self):
        refusal = exposure.refusal(self.settings(listen="tcp:8080"), True)
        self.assertNotIn("\n", refusal)
        for words in ("tcp:8080 (all interfaces)", "JARVICE_SCHED_SERVER_KEY (server_key)",
                      "DSSR_ALLOW_UNAUTHENTICATED=true (allow_unauthenticated)",
                      "listen, e.g. tcp:5000:interface=127.0.0.1"):
            self.assertIn(words, refusal)

    def test_server_key_dummy_or_opt_out_start(self):
        listen = "tcp:8080:interface=10.0.0.5"
        self.assertIsNone(exposure.refusal(self.settings(listen=listen, server_key="u:p"), True))
        self.assertIsNone(exposure.refusal(self.settings(listen=listen), False))
        opted = self.settings(listen=listen, allow_unauthenticated="true")
        self.assertIsNone(exposure.refusal(opted, True))
        self.assertIn("UNAUTHENTICATED", exposure.warning(opted, True))
        self.assertIn("10.0.0.5", exposure.warning(opted, True))

    def test_no_warning_when_nothing_is_exposed(self):
        for settings, real in ((self.settings(allow_unauthenticated="true"), True),
                               (self.settings(listen="tcp:1", allow_unauthenticated="true",
                                              server_key="u:p"), True),
                               (self.settings(listen="tcp:1", allow_unauthenticated="true"),
                                False),
                               (self.settings(listen="tcp:1"), True)):
            self.assertIsNone(exposure.warning(settings, real))


class ProxyAndSlurmrestdTests(SynchronousTestCase):
    """The proxy is reported with its reach; Slurm tokens in clear over the network warned of."""

    def test_the_proxy_is_reported_with_its_reach(self):
        self.assertIsNone(exposure.proxy_report(load()))
        self.assertEqual(exposure.proxy_report(load({"proxy_listen": "tcp:8081"})), (
            "proxy to interactive jobs' apps on tcp:8081 (reachable from other hosts: all "
            "interfaces); each request needs an access token the API issued"))
        local = load({"proxy_listen": "tcp:8081:interface=127.0.0.1"})
        self.assertIn("(this host only)", exposure.proxy_report(local))

    def test_plain_http_slurmrestd_elsewhere_is_warned_of(self):
        rest = {"slurm_interface": "http", "slurmrestd_addr": "http://login1"}
        self.assertEqual(exposure.cleartext_warning(load(rest)), (
            "slurmrestd at http://login1 is plain HTTP to another host: every request carries "
            "a Slurm token in clear (slurm_sa_token's too); use https:// in "
            "JARVICE_SLURMRESTD_ADDR or DSSR_SLURMRESTD_VIA=ssh"))
        self.assertIsNotNone(exposure.cleartext_warning(load({**rest,
                                                              "slurmrestd_addr": "login1"})))
        for safe in ({"slurmrestd_addr": "https://login1"}, {"slurmrestd_via": "ssh"},
                     {"slurmrestd_addr": "http://127.0.0.1"}, {"slurmrestd_addr": "localhost"},
                     {"slurmrestd_addr": "http://[::1]"}, {"slurmrestd_addr": "unix:/run/s"},
                     {"slurm_interface": "cli"}):
            self.assertIsNone(exposure.cleartext_warning(load({**rest, **safe})), safe)


class AllowedHostsTests(SynchronousTestCase):
    def test_names_of_a_listener(self):
        loopback = {"localhost", "127.0.0.1", "[::1]"}
        self.assertEqual(exposure.allowed_hosts("tcp:5000:interface=127.0.0.1"), loopback)
        self.assertEqual(exposure.allowed_hosts("tcp:5000:interface=10.0.0.5"),
                         {*loopback, "10.0.0.5"})
        self.assertEqual(exposure.allowed_hosts("tcp6:5000:interface=\\:\\:1"),
                         {*loopback, "[::1]"})
        for anything in ("tcp:5000", "tcp:5000:interface=0.0.0.0", "unix:/run/dssr.sock",
                         "systemd:domain=INET:index=0"):
            self.assertIsNone(exposure.allowed_hosts(anything), anything)

    def test_host_name(self):
        for value, name in (("LocalHost:5000", "localhost"), ("[::1]:80", "[::1]"),
                            ("[::1]", "[::1]"), ("example.org", "example.org")):
            self.assertEqual(exposure.host_name(value), name)
