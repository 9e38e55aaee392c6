"""Credentials out of the script copy DSSR hands back to upstream (``fscript``).

A line goes if it assigns a credential-looking variable, passes a registry login on a
command line, carries an authorization header, or contains any secret value DSSR
knows of (raw or base64). Proxy URLs stay, their ``user:password@`` shown as
``***@``. The job itself still gets the full script.
"""

import base64
import contextlib
import dataclasses
import re
from collections.abc import Iterable

from dssr.errors import BadRequest
from dssr.executors.config import ExecutorSettings
from dssr.executors.header import JobParameters
from dssr.executors.registry import auth_entry_credentials, ctrsecret_auths

REMOVED = "# [DSSR: credential line removed]"

# No leading [A-Za-z0-9_]* before the keyword: search() finds the same lines without it,
# and with it rescanned each word from every position in it (5x the time of a scrub).
_CREDENTIAL_LINE = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|USERNAME|AUTH)"
    r"[A-Za-z0-9_]*\s*="
    r"|docker-(password|username|login)"
    r"|authorization\s*:"
    r"|\bbearer\s",
    re.IGNORECASE,
)
# Shorter values would remove unrelated lines; lines that assign them go by name anyway.
_MIN_SECRET = 4


def _userinfo(url: str) -> str:
    """The ``user:password`` of ``url`` (scheme optional); everything before its last
    ``@``, so a password holding ``/`` or ``@`` is still all of it."""
    rest = url.partition("://")[2] if "://" in url else url
    return rest.rpartition("@")[0]


def redact_url(url: str) -> str:
    """``url`` with its ``user:password@`` shown as ``***@`` (no userinfo: unchanged)."""
    if not _userinfo(url):
        return url
    scheme = url.partition("://")[0] + "://" if "://" in url else ""
    return scheme + "***@" + url.rpartition("@")[2]


def shown_settings(settings: ExecutorSettings) -> ExecutorSettings:
    """``settings`` as ``fscript`` may show them: proxy URLs without credentials."""
    return dataclasses.replace(settings, http_proxy=redact_url(settings.http_proxy),
                               https_proxy=redact_url(settings.https_proxy))


def secret_values(
    params: JobParameters, settings: ExecutorSettings, extra: Iterable[str] = ()
) -> tuple[str, ...]:
    """Every secret a job script may contain, raw and base64-encoded (not user names)."""
    secrets = [params.ctrsecret, settings.init_docker_password, *extra]
    for url in (settings.http_proxy, settings.https_proxy):
        userinfo = _userinfo(url)
        secrets += [userinfo, userinfo.partition(":")[2]]
    if params.docker_secret is not None:
        secrets.append(params.docker_secret.password)
    for server, entry in ctrsecret_auths(params.ctrsecret).items():
        if isinstance(entry, dict):
            secrets += [value for value in entry.values() if isinstance(value, str)]
        # An unusable entry's raw values are covered above.
        with contextlib.suppress(BadRequest):
            secrets.append(auth_entry_credentials(server, entry).password)
    encoded = [base64.b64encode(secret.encode()).decode() for secret in secrets]
    return tuple(s for s in {*secrets, *encoded} if len(s) >= _MIN_SECRET)


def scrub_fscript(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential line replaced by a ``REMOVED`` marker."""
    secrets = tuple(s for s in secrets if len(s) >= _MIN_SECRET)
    lines = text.splitlines(keepends=True)
    kept = []
    for line in lines:
        if _CREDENTIAL_LINE.search(line) or any(secret in line for secret in secrets):
            kept.append(REMOVED + ("\n" if line.endswith(("\n", "\r")) else ""))
        else:
            kept.append(line)
    return "".join(kept)
