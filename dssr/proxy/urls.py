"""Where users reach interactive jobs: ``JARVICE_JOBS_DOMAIN`` as URLs and routes.

Its forms (as Jarvice's job ingress): host-based ``jobs.example.com`` (each job is
``https://job-<number>.jobs.example.com/``), path-based ``jobs.example.com/job$``
(``https://jobs.example.com/job<number>/``), or a full URL with scheme and port, used
as written (``http://127.0.0.1:8081/job$``). ``$`` stands for the job number.
"""

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlencode, urlsplit

if TYPE_CHECKING:
    from dssr.proxy.tokens import AccessTokens

TOKEN_PARAMETER = "dssr_token"  # noqa: S105 (a parameter name, not a secret)


@dataclass(frozen=True)
class JobsURL:
    """``scheme``://``host````path`` with ``$`` for the job number in host or path."""

    scheme: str
    host: str
    path: str

    def url(self, number: int) -> str:
        """The root URL of job ``number``'s app."""
        return f"{self.scheme}://{self.root_host(number)}{self.root_path(number)}"

    def root_host(self, number: int) -> str:
        return self.host.replace("$", str(number))

    def root_path(self, number: int) -> str:
        return self.path.replace("$", str(number))

    def number(self, host: str, path: str) -> int | None:
        """The job number a request for ``host`` and ``path`` is for, or None."""
        if "$" in self.host:
            found = re.fullmatch(_pattern(self.host), host.lower())
            return int(found.group(1)) if found and path.startswith(self.path) else None
        found = re.match(_pattern(self.path), path)
        return int(found.group(1)) if found else None


def _pattern(template: str) -> str:
    """A regular expression matching ``template`` with a number for its ``$``."""
    before, _, after = template.lower().partition("$")
    return re.escape(before) + "([0-9]{1,18})" + re.escape(after)


@dataclass(frozen=True)
class JobsAddresses:
    """Where users reach interactive jobs (``url``), with the access tokens DSSR issues
    for them (``tokens``, a ``dssr.proxy.tokens.AccessTokens``)."""

    url: JobsURL
    tokens: "AccessTokens"

    def address(self, jobid: str, number: int, template: str = "", password: str = "") -> str:
        """The address upstream hands the user: the job's root (or its app's URL
        ``template``, see ``app_url``) carrying the job's access token."""
        root = self.url.url(number)
        return with_token(app_url(template, root, password), self.tokens.issue(jobid, number))


def parse_jobs_domain(text: str) -> JobsURL:
    """``JARVICE_JOBS_DOMAIN`` as a ``JobsURL``; ``ValueError`` for one that cannot route."""
    text = text.strip()
    if not text:
        raise ValueError("is empty")
    if "://" not in text:
        text = "https://" + (text if "/" in text else f"job-$.{text}")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{text!r} is not an http(s) address")
    path = parts.path or "/"
    if not path.endswith("/"):
        path += "/"
    where = (parts.netloc + path).count("$")
    if where != 1 or ("$" in parts.netloc and path != "/"):
        raise ValueError(f"{text!r} needs exactly one $ (the job number), in the host "
                         "or in the path")
    return JobsURL(parts.scheme, parts.netloc.lower(), path)


def with_token(url: str, token: str) -> str:
    """``url`` carrying ``token`` in its query (after any other parameters), as
    upstream hands it to the user."""
    before, hash, fragment = url.partition("#")
    joiner = "&" if "?" in before else "?"
    return f"{before}{joiner}{urlencode({TOKEN_PARAMETER: token})}{hash}{fragment}"


def app_url(template: str, root: str, password: str) -> str:
    """Job's URL from its app's ``/etc/NAE/url.txt`` template, else ``root``.

    The template (``https://%PUBLICADDR%/vnc.html?password=%NIMBIXPASSWD%``) gives
    the path, query and fragment below the job's ``root``; its scheme and host are
    the proxy's, so an image cannot send users elsewhere. ``%NIMBIXPASSWD%`` is the
    app's password.
    """
    _, marker, rest = template.strip().partition("%PUBLICADDR%")
    if not marker or (rest and rest[0] not in "/?#") or any(c.isspace() for c in rest):
        return root
    rest = rest.replace("%NIMBIXPASSWD%", quote(password, safe=""))
    return root + rest[1:] if rest.startswith("/") else root + rest


def without_token(target: str) -> tuple[str, str | None]:
    """A request target with the access token taken out of its query (the rest kept
    byte for byte), and the token."""
    path, question, query = target.partition("?")
    if not question:
        return target, None
    kept, token = [], None
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key != TOKEN_PARAMETER:
            kept.append(pair)
        elif token is None:
            token = unquote(value)
    if token is None:
        return target, None
    return (f"{path}?{'&'.join(kept)}" if kept else path), token
