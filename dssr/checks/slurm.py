"""Checks run as commands on the login node through an ``IRemote``: Slurm, scratch, users.

The shell programs are constants; settings reach them only as quoted arguments.
"""

import posixpath
import secrets

from twisted.internet.task import deferLater

from dssr import jobfiles
from dssr.checks.config import env_label
from dssr.checks.login import authorized_keys_fixes
from dssr.checks.report import Outcome, Status, failed, passed
from dssr.identity import MappedUser
from dssr.remote.interfaces import AuthenticationFailed, RemoteError
from dssr.remote.keys import describe, load_private_key
from dssr.remote.output import first_line
from dssr.slurm.parse import SlurmOutputError, parse_ping, parse_sbatch
from dssr.slurm.releases import describe as describe_release
from dssr.slurm.releases import parse_version
from dssr.slurm.states import Category, category

REQUIRED = ("sbatch", "squeue", "scancel", "scontrol")
OPTIONAL = ("sacct",)
# Each name, then where the login shell finds it ("-": nowhere).
FIND = 'for c in "$@"; do printf "%s %s\\n" "$c" "$(command -v "$c" || echo -)"; done'
# $1: the scratch dir as set (empty: home); $2: <scratch>.jarvice. Exit 3: no scratch
# dir; 4: cannot make .jarvice; 5: cannot create a file there; 6: cannot remove it.
# Prints the absolute path of $2.
SCRATCH = """\
[ -z "$1" ] || [ -d "$1" ] || exit 3
mkdir -p -- "$2" || exit 4
probe=$(mktemp -- "$2/.dssr-check.XXXXXX") || exit 5
rm -f -- "$probe" || exit 6
cd -- "$2" && pwd -P
"""
MKDIR_THEN = 'mkdir -p -- "$1" && shift && exec "$@"'
SUBMIT_MARK = "DSSR_CHECK_OK"


def parse_found(text: str) -> dict[str, str | None]:
    """``FIND``'s output: each command name → its path, or None when not found."""
    found = {}
    for line in text.splitlines():
        name, _, path = line.partition(" ")
        found[name] = None if path in ("", "-") else path
    return found


async def check_commands(remote, user: str, host: str) -> Outcome:
    """Whether the Slurm commands DSSR runs are on the PATH its SSH commands get."""
    result = await remote.run(["sh", "-c", FIND, "sh", *REQUIRED, *OPTIONAL])
    found = parse_found(result.stdout.decode("utf-8", "replace"))
    missing = [name for name in REQUIRED if not found.get(name)]
    if missing:
        return failed(
            f"not found on {host} for {user}: {', '.join(missing)}",
            f"make them runnable in a non-interactive SSH command (`ssh {user}@{host} "
            f"command -v {missing[0]}` must print a path): install Slurm's client commands, "
            f"or add their directory to PATH, e.g. in /etc/environment")
    places = sorted({posixpath.dirname(found[name]) for name in REQUIRED})
    detail = f"{', '.join(REQUIRED)} in {', '.join(places)}"
    if not found.get("sacct"):
        detail += "; no sacct (fine: DSSR's end records stand in for accounting)"
    return passed(detail)


async def check_controller(remote) -> Outcome:
    """Whether slurmctld answers ``scontrol ping`` from the login node, and which Slurm
    release the login node's commands are."""
    result = await remote.run(["scontrol", "ping"])
    text = result.stdout.decode("utf-8", "replace")
    if result.ok and parse_ping(text):
        release = await remote.run(["scontrol", "--version"])
        version = parse_version(release.stdout.decode("utf-8", "replace"))
        found = describe_release(version) if version else (
            f"Slurm release unknown (scontrol --version: {first_line(release.stdout)!r})")
        return passed(f"{first_line(result.stdout)}; {found}")
    said = first_line(result.stdout if result.stdout.strip() else result.stderr)
    return failed(f"scontrol ping: {said}",
                  "start slurmctld on the controller (systemctl start slurmctld); if it runs, "
                  "check that the login node's slurm.conf names it (SlurmctldHost) and that "
                  "munge works there (munge -n | unmunge)")


async def scratch_outcome(remote, scratch: str, user: str, host: str,
                          as_user: str | None = None) -> Outcome:
    """Whether ``user`` can create and remove a file in ``<scratch>.jarvice``."""
    directory = jobfiles.directory(scratch)
    result = await remote.run(["sh", "-c", SCRATCH, "sh", scratch, directory], user=as_user)
    shown = directory if scratch else f"~{user}/{directory}"
    if result.ok:
        return passed(f"{result.stdout.decode('utf-8', 'replace').strip()} is writable by {user}")
    why = first_line(result.stderr)
    share = "on storage the compute nodes share"
    if result.status == 3:
        return failed(f"{env_label('job_scratch_dir')} {scratch} does not exist on {host}",
                      f"create it {share} and let {user} write there (mkdir -p {scratch} && "
                      f"chown {user} {scratch}), or point {env_label('job_scratch_dir')} at "
                      f"an existing directory")
    if result.status in (4, 5, 6):
        step = {4: f"create {shown}", 5: f"create a file in {shown}",
                6: f"remove a file from {shown}"}[result.status]
        return failed(f"{user} cannot {step}: {why}",
                      f"let {user} write to {scratch or '~' + user} (chown or chmod), or "
                      f"create {shown} {share}, owned by {user}")
    return failed(f"the scratch check failed as {user} (exit {result.status}): {why}",
                  f"run `ls -ld {scratch or '~'}` as {user} on {host} to see why")


async def check_mapped_user(remote, user: MappedUser, scratch: str, host: str,
                            mapping_file: str) -> Outcome:
    """Whether a mapped user's key logs in as that user, and can write its job output."""
    where = f"ssh_private_key_b64 of {user.email} in {mapping_file}"
    name = user.cluster_user
    try:
        key = load_private_key(user.private_key)
    except ValueError as error:
        return failed(f"{where}: {error}",
                      f"set it to base64 -w0 of {name}'s unencrypted private key file")
    try:
        result = await remote.run(["id", "-un"], user=name)
    except AuthenticationFailed:
        return failed(f"{host} refused {name}'s key {describe(key)}",
                      *authorized_keys_fixes(name, key, host, where))
    except RemoteError as error:
        return failed(f"could not log in as {name}: {error}",
                      f"run `ssh {name}@{host} true` with that key to see why")
    landed = result.stdout.decode("utf-8", "replace").strip()
    if landed != name:
        return failed(f"{name}'s key logs in as {landed or '(nobody)'}",
                      f"map {user.email} to {landed} in {mapping_file}, or give {name} its own "
                      f"key")
    scratch_check = await scratch_outcome(remote, scratch, name, host, as_user=name)
    if scratch_check.status is not Status.PASS:
        return scratch_check
    return passed(f"{user.email} logs in as {name} with {describe(key)}; "
                  f"{scratch_check.detail}")


class SubmitTest:
    """A tiny job through ``sbatch --wrap``: submitted, waited for, its output read, removed."""

    def __init__(self, remote, clock, scratch: str, timeout: float, poll: float = 1.0):
        self._remote = remote
        self._clock = clock
        self._scratch = scratch
        self._timeout = timeout
        self._poll = poll
        self.name = f"dssr-check-{secrets.token_hex(4)}"
        # Not sbatch's %j pattern: this file is read back and removed by its own name.
        self.output = jobfiles.job_paths(scratch, self.name, "check").output

    async def run(self) -> Outcome:
        argv = ["sh", "-c", MKDIR_THEN, "sh", jobfiles.directory(self._scratch), "sbatch",
                "--parsable", f"--job-name={self.name}", f"--output={self.output}",
                "--nodes=1", "--ntasks=1", "--time=5",
                "--wrap", f'echo {SUBMIT_MARK} on "$(hostname)"']
        submitted = await self._remote.run(argv)
        try:
            jobid = parse_sbatch(submitted.stdout.decode("utf-8", "replace"))
        except SlurmOutputError:
            return failed(f"sbatch refused the test job: {first_line(submitted.stderr)}",
                          "run `sbatch --wrap true` as the service account on the login "
                          "node to see why (no default partition? mark one Default=YES)")
        try:
            return await self._follow(jobid)
        finally:
            await self._remote.run(["rm", "-f", "--", self.output])

    async def _follow(self, jobid: str) -> Outcome:
        started = self._clock.seconds()
        state, reason = await self._state(jobid)
        while state and category(state) != Category.ENDED:
            if self._clock.seconds() - started > self._timeout:
                await self._remote.run(["scancel", jobid])
                return failed(f"job {jobid} still {state} after {self._timeout:g}s "
                              f"(reason: {reason})",
                              f"see why with `squeue -j {jobid}` and `scontrol show job "
                              f"{jobid}`; give it longer with --submit-timeout")
            await deferLater(self._clock, self._poll, lambda: None)
            state, reason = await self._state(jobid)
        took = self._clock.seconds() - started
        result = await self._remote.run(["cat", "--", self.output])
        text = result.stdout.decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if line.startswith(SUBMIT_MARK)]
        if lines and state in ("", "COMPLETED"):
            return passed(f"job {jobid} ran {lines[0].removeprefix(SUBMIT_MARK).strip()} and "
                          f"its output came back in {took:.0f}s")
        said = first_line(result.stdout if result.ok else result.stderr)
        return failed(f"job {jobid} ended {state or '(gone from the queue)'}; its output: {said}",
                      f"its output file is {self.output} below the service account's home "
                      f"unless absolute: the compute nodes must share it with the login node; "
                      f"see the slurmd log on the node for job {jobid}")

    async def _state(self, jobid: str) -> tuple[str, str]:
        """The job's state and reason; ("", "") once Slurm has forgotten it."""
        result = await self._remote.run(["squeue", "--noheader", f"--jobs={jobid}",
                                         "--states=all", "--format=%T|%r"])
        state, _, reason = result.stdout.decode("utf-8", "replace").strip().partition("|")
        return (state, reason) if result.ok else ("", "")
