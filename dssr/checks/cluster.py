"""The checks of a Slurm cluster, in order, sharing one login attempt and one remote.

The login and the remote are the service's own, built by ``dssr.compose``; only what
a check must not do is changed (see ``login.ObservedKnownHosts``).
"""

from dssr import compose
from dssr.checks import login, privatedata, restd, slurm
from dssr.checks.report import Outcome, failed
from dssr.checks.runner import Check
from dssr.remote.interfaces import RemoteError
from dssr.remote.logged import LoggedRemote

# The checks of an SSH setup, in order, without the per-mapped-user ones and the
# optional submit test: what ``dssr check`` lists as skipped when the settings fail.
STEPS = ("private key", "login node", "host key", "authentication", "slurm commands",
         "slurm controller", "scratch dir")


class Cluster:
    """Checks the login node and Slurm behind ``settings`` as the slurm connector reaches them.

    ``timeout`` bounds each network step and command; ``submit_timeout`` the test job.
    """

    def __init__(self, reactor, settings, timeout: float, submit_timeout: float):
        self._reactor = reactor
        self._settings = settings
        self._timeout = timeout
        self._submit_timeout = submit_timeout
        self._host, self._port = settings.cluster_addr, settings.cluster_port
        self._user = settings.ssh_user
        self._known_hosts = compose.known_hosts(settings, login.ObservedKnownHosts)
        self._log_in = compose.ssh_login(settings, reactor, self._known_hosts, timeout)
        self._mapping = compose.identities(settings)
        self._key = None
        self._login = None
        self._remote = None
        self._client = None

    def checks(self, submit_test: bool) -> list[Check]:
        """Every check that applies, each after the ones it needs."""
        if self._settings.remote == "local":
            self._remote = compose.local_remote(self._settings, self._reactor)
            where, logged_in, checks = "this host", (), []
        else:
            where, logged_in = self._host, ("authentication",)
            checks = [
                Check("private key", self._private_key),
                Check("login node", self._tcp),
                Check("host key", self._host_key, ("login node",)),
                Check("authentication", self._authentication, ("host key", "private key")),
            ]
        user = self._user or "this account"
        checks += [
            Check("slurm commands", self._guard(lambda: slurm.check_commands(
                self._remote, user, where)), logged_in),
            Check("slurm controller", self._guard(lambda: slurm.check_controller(
                self._remote)), ("slurm commands",)),
            Check("scratch dir", self._guard(lambda: slurm.scratch_outcome(
                self._remote, self._settings.job_scratch_dir, user, where)), logged_in),
        ]
        for mapped in (self._mapping.users.values() if self._mapping else ()):
            checks.append(Check(
                f"mapped user {mapped.cluster_user}",
                self._guard(lambda mapped=mapped: slurm.check_mapped_user(
                    self._ssh_remote(), mapped, self._settings.job_scratch_dir, where,
                    self._settings.id_mapping_file)),
                ("host key",)))
        if self._mapping and self._mapping.users:
            mapped = sorted({user.cluster_user for user in self._mapping.users.values()})
            checks.append(Check("private data", self._guard(
                lambda: privatedata.check_private_data(self._remote, mapped)),
                ("slurm controller",)))
        if self._settings.jobs_domain and self._settings.remote == "ssh":
            accounts = [None] + [user.cluster_user for user in
                                 (self._mapping.users.values() if self._mapping else ())]
            checks.append(Check("forwarding", self._guard(lambda: login.check_forwarding(
                self._ssh_remote(), accounts, self._host, self._port)),
                ("authentication",)))
        if self._settings.slurm_interface == "http":
            checks += self._restd_checks(logged_in)
        if submit_test:
            checks.append(Check("submit test", self._guard(self._submit_test),
                                ("slurm controller", "scratch dir")))
        return checks

    def _restd_checks(self, logged_in: tuple[str, ...]) -> list[Check]:
        """slurmrestd answers, its version, and a token round trip to slurmctld."""
        user = compose.service_user(self._settings)
        tokens = []  # built once the remote exists (scontrol tokens run over it)
        version = []

        def client():
            if self._client is None:
                self._client = compose.rest_client(self._settings, self._reactor, self._remote)
            return self._client

        def source():
            if not tokens:
                commands = LoggedRemote(self._remote, self._reactor, user)
                tokens.append(compose.slurm_tokens(self._settings, self._reactor, commands,
                                                   user))
            return tokens[0]

        async def endpoint():
            return await restd.check_endpoint(client(), self._settings)

        async def speaks():
            outcome, found = await restd.check_version(client(), source(), user,
                                                       self._settings)
            version.append(found)
            return outcome

        async def token():
            return await restd.check_token(client(), source(), user, version[-1],
                                           self._settings)

        through = logged_in if self._settings.slurmrestd_via == "ssh" else ()
        return [Check("slurmrestd", self._guard(endpoint), through),
                Check("slurmrestd version", self._guard(speaks), ("slurmrestd", *logged_in)),
                Check("slurmrestd token", self._guard(token), ("slurmrestd version",))]

    async def close(self) -> None:
        """Log out everywhere (the reactor may stop once this fires)."""
        if self._login is not None and not isinstance(self._login, RemoteError) and (
                self._login.alive):
            await self._login.close("dssr check is done")
        if self._remote is not None and self._remote.service is not None:
            await self._remote.service.stopService()
        if self._client is not None:
            await self._client.close()

    # -- the way in ----------------------------------------------------------------

    async def _private_key(self) -> Outcome:
        outcome, self._key = login.check_private_key(self._settings)
        return outcome

    async def _tcp(self) -> Outcome:
        return await login.check_tcp(self._reactor, self._host, self._port, self._timeout)

    async def _host_key(self) -> Outcome:
        # Without a usable key of our own, a throwaway one still reaches the key exchange.
        self._login = await login.log_in(self._log_in, self._user,
                                         self._key or login.throwaway_key())
        return login.host_key_outcome(self._login, self._known_hosts, self._host, self._port)

    async def _authentication(self) -> Outcome:
        self._ssh_remote()  # what the checks after this one run their commands through
        return login.login_outcome(self._login, self._user, self._key, self._host, self._port)

    def _ssh_remote(self):
        """The service's SSH transport, logging in through the observed known_hosts."""
        if self._remote is None:
            self._remote = compose.ssh_remote(
                self._settings, self._reactor, compose.mapped_keys(self._mapping),
                key=self._key or login.throwaway_key(), trusted=self._known_hosts,
                command_timeout=self._timeout, queue_timeout=2 * self._timeout,
                connect_timeout=self._timeout, keepalive=0)
        return self._remote

    async def _submit_test(self) -> Outcome:
        return await slurm.SubmitTest(self._remote, self._reactor, self._settings.job_scratch_dir,
                                      self._submit_timeout).run()

    def _guard(self, work):
        """``work``, with a transport failure as a ✗ line rather than a crash."""
        async def run() -> Outcome:
            try:
                return await work()
            except RemoteError as error:
                return failed(f"could not run the check's command on {self._host}: {error}",
                              "run dssr check again; if it fails the same way, read the "
                              "login node's sshd log")
        return run
