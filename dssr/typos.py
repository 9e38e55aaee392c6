"""Names that look like misspelt settings: environment variables and YAML keys.

Used at every start (``twistd dssr`` warns) and by ``dssr check`` (which fails).
"""

import difflib
import re
from collections.abc import Iterable, Mapping

from dssr.settings import BY_KEY, SETTINGS

KNOWN = frozenset({s.env for s in SETTINGS if s.env} | {a for s in SETTINGS for a in s.aliases}
                  | {"WAITRESS_PORT", "WAITRESS_BIND_ADDRESS"})
PREFIXES = ("JARVICE_", "DSSR_")
# How alike a name must be to a known one to be called a typo of it (difflib ratio).
TYPO_CUTOFF = 0.8
# Kubernetes puts FOO_SERVICE_HOST, FOO_PORT_5000_TCP_ADDR... in every pod for every
# service (jarvice-api, jarvice-dal...): those JARVICE_* names are no one's typo.
_SERVICE_LINK = re.compile(r".+_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT_\d+_(TCP|UDP|SCTP)"
                           r"(_ADDR|_PORT|_PROTO)?)")
_SERVICE_URL = re.compile(r"(tcp|udp|sctp)://\S+")
_UNKNOWN_YAML_KEY = re.compile(r"unknown setting '(\w+)' in (.+)")


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is most likely a typo of, if any is close enough."""
    matches = difflib.get_close_matches(name, sorted(known), n=1, cutoff=TYPO_CUTOFF)
    return matches[0] if matches else None


def service_link(name: str, value: str) -> bool:
    """Whether ``name=value`` is a variable Kubernetes sets for a service."""
    return bool(_SERVICE_LINK.fullmatch(name)) or (
        name.endswith("_PORT") and bool(_SERVICE_URL.fullmatch(value)))


def unknown_names(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Likely typos (name → the known name meant) and other unknown ``JARVICE_*`` names.

    Unknown ``DSSR_*`` names count only as typos: other tools may share the prefix.
    Values are never looked at beyond telling Kubernetes' service variables apart.
    """
    typos, others = {}, []
    for name in sorted(environ):
        if (not name.startswith(PREFIXES) or name in KNOWN
                or service_link(name, environ[name])):
            continue
        meant = closest(name, KNOWN)
        if meant:
            typos[name] = meant
        elif name.startswith("JARVICE_"):
            others.append(name)
    return typos, others


def environment_warnings(environ: Mapping[str, str]) -> list[str]:
    """One line for each environment name that looks like a misspelt setting."""
    typos, _ = unknown_names(environ)
    return [f"{name} is not a setting DSSR knows, so it is ignored: did you mean {meant}?"
            for name, meant in typos.items()]


def unknown_key_fix(message: str) -> str | None:
    """How to put right the ``SettingsError`` ``message`` when it is about an unknown
    YAML key (None for any other error)."""
    unknown = _UNKNOWN_YAML_KEY.fullmatch(message)
    if unknown is None:
        return None
    key, source = unknown.groups()
    meant = closest(key, BY_KEY)
    if meant:
        return f"rename {key} to {meant} in {source}"
    return f"remove {key} from {source} (the README's Settings table lists every key)"
