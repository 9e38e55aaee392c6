"""Files that settings name: private ones kept private, YAML errors told by position.

A message here never holds the file's content: a YAML error is its line, column and
problem (quoted text masked), a private file's mode is its only detail.
"""

import os
import re
import stat

import yaml

# Bits that let someone other than the owner read (or write) a file.
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


class FileProblem(ValueError):
    """A file a setting names cannot be used; the message names the file, never its content."""


def yaml_problem(error: yaml.YAMLError, source: str) -> str:
    """Where and why ``source`` is not valid YAML, without a byte of its text."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = _QUOTED.sub("'…'", getattr(error, "problem", None) or "cannot be parsed")
    return f"{source} is not valid YAML{where}: {problem}"


def loose_mode(path: str) -> str | None:
    """Why ``path`` is too open for a secret (group or others may read it), with the fix;
    None when it is not, or cannot be looked at."""
    try:
        mode = os.stat(os.path.expanduser(path)).st_mode
    except OSError:
        return None
    if not mode & _OTHERS:
        return None
    return (f"{path} is readable by group or others (mode {stat.S_IMODE(mode):04o}): "
            f"run chmod 600 {path}")


def read_private(path: str, what: str) -> bytes:
    """The bytes of the secret file ``path`` (setting ``what``); refused, as OpenSSH
    refuses such a private key, when group or others may read it."""
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & _OTHERS:
                raise FileProblem(f"{what} {path} is readable by group or others (mode "
                                  f"{stat.S_IMODE(mode):04o}) and holds secrets: run "
                                  f"chmod 600 {path}")
            return handle.read()
    except OSError as error:
        raise FileProblem(f"{what} {path}: {error.strerror}") from None
