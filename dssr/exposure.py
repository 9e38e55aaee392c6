"""What DSSR's settings expose to the network, and whether that may start.

A real connector runs shell work on the cluster for whoever can call ``/submit``,
so it does not serve a non-loopback address without a server key unless the
operator opts out by name (``allow_unauthenticated``), and then every start says so
loudly. The embedded dummy connector runs nothing and is exempt. The proxy to
interactive jobs' apps is public-facing by design (every request needs an access
token only the API hands out), so where it listens is reported, never refused. Slurm
tokens sent to slurmrestd in clear over the network are warned of.
"""

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # at run time settings imports this module (through settingtypes)
    from dssr.settings import Settings

# Which positional part (the type is part 0) is the interface, for the endpoint types
# that take one: ``tcp:5000:10.0.0.5`` works like ``tcp:5000:interface=10.0.0.5``.
_INTERFACE_POSITION = {"tcp": 2, "tcp6": 3, "ssl": 5}
_LOCAL_TYPES = ("unix",)
_LOCAL_NAMES = ("localhost",)


def endpoint_parts(description: str) -> tuple[list[str], dict[str, str]]:
    """Positional and keyword parts of a Twisted endpoint string, as Twisted splits it.

    ``:`` separates parts, the first ``=`` of a part makes it a keyword, ``\\``
    escapes the next character.
    """
    args: list[str] = []
    kwargs: dict[str, str] = {}
    part: list[str] = []
    current = ""
    chars = iter(description)
    for char in chars:
        if char == "\\":
            current += next(chars, "")
        elif char == ":":
            part.append(current)
            _add(part, args, kwargs)
            part, current = [], ""
        elif char == "=" and not part:
            part.append(current)
            current = ""
        else:
            current += char
    part.append(current)
    _add(part, args, kwargs)
    return args, kwargs


def _add(part: list[str], args: list[str], kwargs: dict[str, str]) -> None:
    if len(part) == 1:
        args.append(part[0])
    else:
        kwargs[part[0]] = part[1]


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``address`` as an IP (IPv4-mapped IPv6 as IPv4), or None for a host name."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    return getattr(ip, "ipv4_mapped", None) or ip


def reachable_address(description: str) -> str | None:
    """What other hosts could connect to when serving on ``description``, or None.

    None for a loopback interface (or ``localhost``) or a unix socket; otherwise a
    phrase naming the address (``all interfaces``, ``10.0.0.5``). Host names other
    than localhost, and endpoint types DSSR cannot see into (systemd sockets,
    plugins), count as reachable.
    """
    args, kwargs = endpoint_parts(description)
    kind = args[0].strip().lower() if args else ""
    if kind in _LOCAL_TYPES:
        return None
    if kind not in _INTERFACE_POSITION:
        return f"a {kind or 'malformed'} endpoint DSSR cannot tell is local"
    position = _INTERFACE_POSITION[kind]
    interface = kwargs.get("interface", args[position] if len(args) > position else "")
    interface = interface.strip()
    if interface.lower() in _LOCAL_NAMES:
        return None
    ip = _ip(interface) if interface else None
    if not interface or (ip is not None and ip.is_unspecified):
        return "all interfaces"
    return None if ip is not None and ip.is_loopback else interface


# What a browser may name this host as when it is served on loopback.
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def host_name(value: str) -> str:
    """A ``Host`` header's host, lower-cased, without the port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.partition("]")[0] + "]"
    return value.rpartition(":")[0] if value.count(":") == 1 else value


def allowed_hosts(description: str) -> frozenset[str] | None:
    """The ``Host`` names a listener on ``description`` is for (loopback names, its own
    address), or None when any is (all interfaces, unix sockets, opaque endpoints).

    Without a server key, a page on an attacker's domain that resolves to 127.0.0.1
    (DNS rebinding) would otherwise reach a loopback-only API from the victim's browser.
    """
    args, kwargs = endpoint_parts(description)
    kind = args[0].strip().lower() if args else ""
    if kind not in _INTERFACE_POSITION:
        return None
    position = _INTERFACE_POSITION[kind]
    interface = kwargs.get("interface", args[position] if len(args) > position else "")
    interface = interface.strip().lower()
    ip = _ip(interface) if interface else None
    if not interface or (ip is not None and ip.is_unspecified):
        return None
    own = f"[{interface}]" if ":" in interface else interface
    return frozenset({*_LOOPBACK_HOSTS, own})


def _exposed(settings: "Settings", real_connector: bool) -> str | None:
    if not real_connector or settings.server_key:
        return None
    return reachable_address(settings.listen)


def refusal(settings: "Settings", real_connector: bool) -> str | None:
    """The one-line reason not to start, when a real connector would be served open."""
    where = _exposed(settings, real_connector)
    if where is None or settings.allow_unauthenticated:
        return None
    return (f"refusing to serve the {settings.connector} connector on {settings.listen} "
            f"({where}) without authentication: set JARVICE_SCHED_SERVER_KEY (server_key), "
            f"or listen on loopback or a unix socket (listen, e.g. "
            f"tcp:5000:interface=127.0.0.1), or accept the risk with "
            f"DSSR_ALLOW_UNAUTHENTICATED=true (allow_unauthenticated)")


def warning(settings: "Settings", real_connector: bool) -> str | None:
    """What to warn of at every start when the operator opted out of the refusal."""
    where = _exposed(settings, real_connector)
    if where is None or not settings.allow_unauthenticated:
        return None
    return (f"UNAUTHENTICATED: the {settings.connector} connector is served on "
            f"{settings.listen} ({where}) with no server key: anyone who reaches it can "
            f"run jobs on the cluster (allow_unauthenticated is true; set "
            f"JARVICE_SCHED_SERVER_KEY)")


def proxy_report(settings: "Settings") -> str | None:
    """Where the proxy to interactive jobs' apps listens and who can reach it, or None."""
    if not settings.proxy_listen:
        return None
    where = reachable_address(settings.proxy_listen)
    reach = f"reachable from other hosts: {where}" if where else "this host only"
    return (f"proxy to interactive jobs' apps on {settings.proxy_listen} ({reach}); each "
            f"request needs an access token the API issued")


def cleartext_warning(settings: "Settings") -> str | None:
    """The warning when Slurm tokens would cross the network unencrypted: slurmrestd
    over ``http://`` to another host, reached directly rather than through SSH."""
    address = settings.slurmrestd_addr
    if (settings.slurm_interface != "http" or settings.slurmrestd_via != "direct"
            or not address or address.startswith("unix:")):
        return None
    url = urlsplit(address if "://" in address else "http://" + address)
    host = url.hostname or ""
    ip = _ip(host)
    if url.scheme != "http" or host.lower() in _LOCAL_NAMES or (ip is not None
                                                                and ip.is_loopback):
        return None
    return (f"slurmrestd at {address} is plain HTTP to another host: every request carries "
            f"a Slurm token in clear (slurm_sa_token's too); use https:// in "
            f"JARVICE_SLURMRESTD_ADDR or DSSR_SLURMRESTD_VIA=ssh")
