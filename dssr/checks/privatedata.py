"""Whether the service account sees the mapped users' jobs when ``PrivateData`` hides them.

With ``PrivateData=jobs`` in slurm.conf a user sees only their own jobs, and those of
the accounts they coordinate. Mapped users' jobs run as those users, so the service
account must coordinate their accounts, or DSSR cannot list, verdict or cancel them.
"""

from dssr.checks.report import Outcome, failed, passed
from dssr.remote.output import first_line

SACCTMGR = ("sacctmgr", "--noheader", "--parsable2", "show")


def parse_private_data(config: str) -> set[str]:
    """The ``PrivateData`` kinds in ``scontrol show config`` output (empty when none)."""
    for line in config.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "PrivateData":
            kinds = {kind.strip().lower() for kind in value.split(",")}
            return kinds - {"", "none", "(null)"}
    return set()


def parse_accounts(text: str) -> dict[str, set[str]]:
    """``sacctmgr show assoc format=user,account`` (parsable2) → each user's accounts."""
    accounts: dict[str, set[str]] = {}
    for line in text.splitlines():
        user, _, account = line.partition("|")
        if user and account:
            accounts.setdefault(user, set()).add(account)
    return accounts


def parse_coordinated(text: str, user: str) -> set[str]:
    """``sacctmgr show user withcoord format=user,coordinators`` → what ``user`` coordinates."""
    for line in text.splitlines():
        name, _, accounts = line.partition("|")
        if name == user:
            return {account for account in accounts.split(",") if account}
    return set()


def fix_command(accounts: set[str], user: str) -> str:
    """The one ``sacctmgr`` command that makes ``user`` a coordinator of ``accounts``."""
    return f"sacctmgr -i add coordinator account={','.join(sorted(accounts))} names={user}"


async def check_private_data(remote, mapped: list[str]) -> Outcome:
    """Whether ``PrivateData`` lets the service account see the jobs of the ``mapped`` users."""
    config = await remote.run(["scontrol", "show", "config"])
    if not config.ok:
        return failed(f"scontrol show config: {first_line(config.stderr)}",
                      "run `scontrol show config` on the login node to see why")
    kinds = parse_private_data(config.stdout.decode("utf-8", "replace"))
    if "jobs" not in kinds:
        shown = ",".join(sorted(kinds)) or "NONE"
        return passed(f"PrivateData={shown} does not hide jobs: the service account sees "
                      f"the mapped users' jobs")
    whoami = await remote.run(["id", "-un"])
    service = whoami.stdout.decode("utf-8", "replace").strip()
    users = ",".join(mapped)
    associations = await remote.run(
        [*SACCTMGR, "assoc", f"users={users}", "format=user,account"])
    coordinators = await remote.run(
        [*SACCTMGR, "user", service, "withcoord", "format=user,coordinators"])
    if not (associations.ok and coordinators.ok):
        said = first_line(associations.stderr if not associations.ok else coordinators.stderr)
        return failed(
            f"PrivateData=jobs hides the mapped users' jobs from {service}, and sacctmgr "
            f"cannot tell whom it coordinates: {said}",
            "run slurmdbd (AccountingStorageType=accounting_storage/slurmdbd): only "
            "accounting makes an account's coordinator",
            "or take jobs out of PrivateData in slurm.conf")
    accounts = parse_accounts(associations.stdout.decode("utf-8", "replace"))
    coordinated = parse_coordinated(coordinators.stdout.decode("utf-8", "replace"), service)
    unassociated = [user for user in mapped if user not in accounts]
    if unassociated:
        verb = "belongs" if len(unassociated) == 1 else "belong"
        return failed(f"{', '.join(unassociated)} {verb} to no Slurm account, so no "
                      f"coordinator sees their jobs under PrivateData=jobs",
                      f"add them to an account (sacctmgr -i add user {unassociated[0]} "
                      f"account=ACCOUNT), then make {service} its coordinator")
    needed = set().union(*accounts.values()) if accounts else set()
    missing = needed - coordinated
    if missing:
        hidden = sorted(user for user in mapped if accounts[user] & missing)
        return failed(f"PrivateData=jobs hides the jobs of {', '.join(hidden)} from {service}: "
                      f"it coordinates no account of theirs "
                      f"({', '.join(sorted(missing))})",
                      fix_command(missing, service))
    return passed(f"PrivateData={','.join(sorted(kinds))}: {service} coordinates "
                  f"{', '.join(sorted(needed))}, the accounts of every mapped user")
