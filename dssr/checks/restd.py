"""Checks of slurmrestd (``slurm_interface: http``): it answers, speaks a version DSSR
speaks, and takes the service account's token all the way to slurmctld."""

from dssr.checks.config import env_label
from dssr.checks.report import Outcome, failed, passed
from dssr.errors import Unavailable
from dssr.slurm.releases import describe as describe_release
from dssr.slurm.rest import answers
from dssr.slurm.rest.client import location
from dssr.slurm.rest.versions import SUPPORTED, choose, offered, release, serving


def _where(settings) -> str:
    return (f"{env_label('slurmrestd_addr')} and {env_label('slurmrestd_port')} "
            f"({location(settings.slurmrestd_addr, settings.slurmrestd_port)})")


async def check_endpoint(client, settings) -> Outcome:
    """Whether anything answers HTTP where slurmrestd should be (no token needed)."""
    try:
        answer = await client.request("GET", "/openapi/v3", "dssr-check", "")
    except Unavailable as error:
        return failed(error.message,
                      "start slurmrestd on the login node (e.g. SLURM_JWT=daemon slurmrestd "
                      "-a rest_auth/jwt -u USER 0.0.0.0:6820, as a user that is neither root "
                      f"nor SlurmUser), or point {_where(settings)} at where it listens")
    return passed(f"{client.where} answers (HTTP {answer.status} without a token)")


def token_fixes(settings, tokens) -> tuple[str, ...]:
    """How to get slurmrestd to take DSSR's tokens, for the token source in use."""
    common = "set AuthAltTypes=auth/jwt and AuthAltParameters=jwt_key=... in slurm.conf"
    if tokens.name == "minted":
        return (common, f"set {env_label('slurm_jwt_key_file')} to a copy of that jwt_key "
                        "file (the same bytes slurmctld has)")
    if tokens.name == "static":
        return (common, f"set {env_label('slurm_sa_token')} to a fresh token of SlurmUser: "
                        "scontrol token username=SLURMUSER lifespan=SECONDS")
    return (common, f"or set {env_label('slurm_jwt_key_file')} so DSSR mints its tokens")


async def check_version(client, tokens, user: str, settings) -> tuple[Outcome, str]:
    """The OpenAPI version DSSR will speak (the pinned one must be offered)."""
    try:
        answer = await client.request("GET", "/openapi/v3", user, await tokens.token(user))
    except Unavailable as error:
        return failed(error.message, *token_fixes(settings, tokens)), ""
    if answer.status != 200 or answer.document is None:
        return failed(f"no OpenAPI document from {client.where} as {user} (HTTP "
                      f"{answer.status}: {answers.error_text(answer.document) or answer.text})",
                      *token_fixes(settings, tokens)), ""
    versions = offered(answer.document)
    pinned = settings.slurmrestd_api_version
    if pinned and pinned not in versions:
        return failed(f"slurmrestd offers {', '.join(versions) or 'no /slurm API'}, not "
                      f"{pinned}", f"unset {env_label('slurmrestd_api_version')} (detected)",
                      serving(answer.document, pinned)), ""
    try:
        version = pinned or choose(answer.document)
    except Unavailable as error:
        return failed(error.message,
                      f"run a slurmrestd that offers one of {', '.join(SUPPORTED)}"), ""
    found = release(answer.document)
    named = describe_release(found) if found else "its Slurm release unnamed (before 23.11)"
    return passed(f"OpenAPI {version} (offered: {', '.join(versions)}); {named}"), version


async def check_token(client, tokens, user: str, version: str, settings) -> Outcome:
    """A request as the service account that slurmctld itself must accept: ping."""
    try:
        answer = await client.request("GET", f"/slurm/{version}/ping", user,
                                      await tokens.token(user))
    except Unavailable as error:
        return failed(error.message, *token_fixes(settings, tokens))
    if answer.status in (401, 403) or (answer.status != 200 and answers.errors(answer.document)):
        return failed(f"slurmrestd refused the {tokens.name} token of {user} (HTTP "
                      f"{answer.status}: {answers.error_text(answer.document) or answer.text})",
                      *token_fixes(settings, tokens))
    if not answers.pinged(answer.document):
        return failed(f"the token of {user} went through, but no controller is UP",
                      "start slurmctld (systemctl start slurmctld)")
    return passed(f"a {tokens.name} token of {user} went through slurmrestd to slurmctld "
                  "(ping: UP)")
