"""The upstream job script as a ``str.format``-style template, read without ``str.format``.

Upstream doubles literal braces and leaves one field, ``{DOWNSTREAM_PARAMETERS}``. DSSR
fills exactly that field; any other field (or a stray brace) is refused, so nothing in
a request is ever evaluated as a Python format expression.
"""

import re

from dssr.errors import BadRequest

FIELD = "DOWNSTREAM_PARAMETERS"

# Tried in order at each brace: escaped brace, a whole field, a lone brace.
_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def split_template(script: str) -> tuple[str, ...]:
    """The literal text around each ``{DOWNSTREAM_PARAMETERS}``, braces un-doubled.

    Raises ``BadRequest(field="hpc_script")`` for any other field, a lone brace, or a
    script without the field (it would run with no images and no command).
    """
    pieces: list[str] = []
    current: list[str] = []
    start = 0
    for match in _BRACES.finditer(script):
        current.append(script[start:match.start()])
        start = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            current.append(token[0])
        elif match.group(1) == FIELD:
            pieces.append("".join(current))
            current = []
        elif match.group(1) is not None:
            name = match.group(1)
            shown = name if len(name) <= 40 else name[:40] + "..."
            raise BadRequest(
                f"hpc_script line {_line_of(script, match.start())}: unknown template field "
                f"{{{shown}}} (only {{{FIELD}}} is filled; literal braces must be doubled)",
                field="hpc_script",
            )
        else:
            raise BadRequest(
                f"hpc_script line {_line_of(script, match.start())}: single {token!r} "
                "(literal braces must be doubled)",
                field="hpc_script",
            )
    current.append(script[start:])
    pieces.append("".join(current))
    if len(pieces) == 1:
        raise BadRequest(f"hpc_script has no {{{FIELD}}} field", field="hpc_script")
    return tuple(pieces)


def fill_template(script: str, block: str) -> str:
    """``script`` with every ``{DOWNSTREAM_PARAMETERS}`` replaced by ``block``."""
    return block.join(split_template(script))


def literal_text(script: str) -> str:
    """``script`` un-doubled with the field left empty: what its header lines really say."""
    return "".join(split_template(script))
