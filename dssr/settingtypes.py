"""How a setting's text becomes its value: one parser per kind, each raising
``ValueError`` with what the value must be (the settings table names the setting)."""

import base64
import binascii
from collections.abc import Callable
from typing import Any


def integer(text: str) -> int:
    return int(str(text).strip())


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def positive_float(text: str) -> float:
    value = float(str(text).strip())
    if not value > 0:
        raise ValueError("must be more than zero")
    return value


def non_negative_float(text: str) -> float:
    value = float(str(text).strip())
    if not value >= 0:
        raise ValueError("must be zero or more")
    return value


def percent(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100:
        raise ValueError("must be between 0 and 100")
    return value


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


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def server_key(text: str) -> str:
    text = str(text)
    if text and ":" not in text:
        raise ValueError("must be user:password")
    return text


def choice(*allowed: str) -> Callable[[Any], str]:
    def parse(text: Any) -> str:
        text = str(text).strip()
        if text not in allowed:
            raise ValueError("must be " + " or ".join(allowed))
        return text
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
