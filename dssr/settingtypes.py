"""How a setting's text becomes its value: one parser per kind, each raising
``ValueError`` with what the value must be (the settings table names the setting)."""

import base64
import binascii
import math
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IStreamServerEndpointStringParser
from twisted.plugin import getPlugins

from dssr.exposure import endpoint_parts

ENDPOINT_EXAMPLE = "e.g. tcp:5000:interface=127.0.0.1"
# Twisted's own server endpoint types; plugins add theirs (``_endpoint_types``).
_TWISTED_TYPES = ("tcp", "tcp6", "ssl", "unix", "systemd")
_PORTED_TYPES = ("tcp", "tcp6", "ssl")  # their first positional part is the port


def integer(text: Any, expected: str = "must be an integer") -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(expected) from None


def number(text: Any, expected: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(expected) from None
    if not math.isfinite(value):
        raise ValueError(expected)
    return value


def positive_int(text: Any) -> int:
    value = integer(text, "must be a positive integer")
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def positive_float(text: Any) -> float:
    value = number(text, "must be a number of seconds more than zero")
    if not value > 0:
        raise ValueError("must be more than zero")
    return value


def non_negative_float(text: Any) -> float:
    value = number(text, "must be a number, zero or more")
    if not value >= 0:
        raise ValueError("must be zero or more")
    return value


def percent(text: Any) -> int:
    value = integer(text, "must be a whole number between 0 and 100")
    if not 0 <= value <= 100:
        raise ValueError("must be between 0 and 100")
    return value


def port(text: Any) -> int:
    """A TCP port to listen on (0: any free one)."""
    value = integer(text, "must be a port number, 0 to 65535")
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number, 0 to 65535")
    return value


def _endpoint_types() -> set[str]:
    return {*_TWISTED_TYPES, *(parser.prefix for parser in
                               getPlugins(IStreamServerEndpointStringParser))}


def endpoint(text: Any) -> str:
    """A Twisted server endpoint string, checked for its form (not listened on)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"must be a Twisted endpoint string, {ENDPOINT_EXAMPLE}")
    args, kwargs = endpoint_parts(text)
    kind = args[0].strip().lower()
    if kind in _PORTED_TYPES:
        given = kwargs.get("port", args[1] if len(args) > 1 else "")
        try:
            port(given)
        except ValueError as error:
            raise ValueError(f"port {given!r} {error} ({ENDPOINT_EXAMPLE})") from None
    elif kind.isdigit():
        raise ValueError(f"a port alone is not an endpoint: write tcp:{kind} ({ENDPOINT_EXAMPLE})")
    elif kind not in _endpoint_types():
        hint = (f"tcp:{args[1]}:interface={args[0]}" if len(args) == 2 and args[1].isdigit()
                else "tcp:5000:interface=127.0.0.1")
        raise ValueError(f"{kind!r} is not an endpoint type (tcp, tcp6, ssl, unix, ...): "
                         f"write e.g. {hint}")
    return text


def boolean(text: str) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def plain(text: str) -> str:
    return str(text)


def non_negative_int(text: Any) -> int:
    value = integer(text, "must be a whole number, zero or more")
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def server_key(text: Any) -> str:
    """``user:password``, both parts non-empty, or empty (no authentication)."""
    key = str(text)
    user, colon, password = key.partition(":")
    if key and not (colon and user and password):
        raise ValueError("must be user:password, neither part empty (or unset for no key)")
    return key


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``parse``, except that empty (unset) stays empty."""
    def parse_optional(text: Any) -> Any:
        return "" if text is None or text == "" else parse(text)
    return parse_optional


def choice(*allowed: str) -> Callable[[Any], str]:
    def parse(text: Any) -> str:
        chosen = str(text).strip()
        if chosen not in allowed:
            raise ValueError("must be " + " or ".join(allowed))
        return chosen
    return parse


def comma_list(text: Any) -> tuple[str, ...]:
    if isinstance(text, list | tuple):
        return tuple(str(item).strip() for item in text if str(item).strip())
    return tuple(item.strip() for item in str(text).split(",") if item.strip())


def base64_text(text: Any) -> str:
    """A value the reference passes base64-encoded (registry user names, passwords)."""
    try:
        return base64.b64decode(str(text).strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 of UTF-8 text") from None
