"""Twisted's private members are used in dssr/twisted_private/ only (its docstrings say
which, and why); everything else in dssr/ uses Twisted's public API."""

import ast
import importlib
import inspect
import textwrap
from functools import cache

from twisted.trial.unittest import SynchronousTestCase

from tests.test_layers import modules

ALLOWED = "dssr.twisted_private"


def private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def twisted_bases(cls: type) -> list[type]:
    return [base for base in cls.__mro__ if base.__module__.split(".")[0] == "twisted"]


@cache
def private_members(cls: type) -> frozenset[str]:
    """The private names of Twisted class ``cls``: in its namespace or set on ``self``."""
    names = {name for name in vars(cls) if private(name)}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return frozenset(names)
    names.update(node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                 and isinstance(node.value, ast.Name) and node.value.id == "self"
                 and private(node.attr))
    return frozenset(names)


def violations(source: str, namespace: dict) -> list[str]:
    """Where ``source`` (its classes found in ``namespace``) reaches into Twisted.

    A private import from ``twisted``; a class deriving from a Twisted class that
    defines or reads one of that class's private names (an override that silently
    stops running, or a read that breaks, when Twisted renames it); and reading any
    Twisted private name that one of these classes has on another object.
    """
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("twisted"):
            names = [*node.module.split("."), *(alias.name for alias in node.names)]
            found += [f"line {node.lineno}: imports {name}" for name in names if private(name)]
    every = set()
    for node in ast.walk(tree):
        cls = namespace.get(node.name) if isinstance(node, ast.ClassDef) else None
        if not isinstance(cls, type):
            continue
        theirs = frozenset().union(*(private_members(base) for base in twisted_bases(cls)))
        every |= theirs
        defined = [target for statement in node.body if isinstance(statement, ast.Assign)
                   for target in statement.targets if isinstance(target, ast.Name)]
        for inner in [*defined, *ast.walk(node)]:
            name = (inner.name if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef)
                    else inner.attr if isinstance(inner, ast.Attribute)
                    else inner.id if inner in defined else None)
            if name in theirs:
                found.append(f"line {inner.lineno}: {node.name} uses Twisted's {name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in every and not (
                isinstance(node.value, ast.Name) and node.value.id == "self"):
            found.append(f"line {node.lineno}: reads Twisted's {node.attr}")
    return sorted(set(found))


class PublicAPITests(SynchronousTestCase):
    def test_only_twisted_private_uses_twisted_private_members(self):
        self.maxDiff = None
        found = {}
        for name, path in modules().items():
            if name == ALLOWED or name.startswith(ALLOWED + ".") or name.endswith("__main__"):
                continue
            problems = violations(path.read_text(), vars(importlib.import_module(name)))
            if problems:
                found[name] = problems
        self.assertEqual(found, {})

    def test_the_scan_finds_each_kind(self):
        """The scan would see the uses this package once made outside twisted_private."""
        from twisted.conch.ssh.transport import SSHClientTransport
        from twisted.web.http import HTTPChannel

        class Client(SSHClientTransport):
            pass

        class Channel(HTTPChannel):
            pass

        source = textwrap.dedent("""
            from twisted.conch.ssh._kex import getKex
            class Client(SSHClientTransport):
                def _keySetup(self, secret, hash):
                    pass
            class Channel(HTTPChannel):
                _log = None
                def lineReceived(self, line):
                    self._buffer = b""
            def peek(channel):
                return channel._receivedHeaderSize
        """)
        found = violations(source, {"Client": Client, "Channel": Channel})
        self.assertEqual(found, [
            "line 11: reads Twisted's _receivedHeaderSize",
            "line 2: imports _kex",
            "line 4: Client uses Twisted's _keySetup",
            "line 7: Channel uses Twisted's _log",
            "line 9: Channel uses Twisted's _buffer",
        ])

    def test_no_false_alarm_on_own_names(self):
        from twisted.web.http import HTTPChannel

        class Channel(HTTPChannel):
            pass

        source = "class Channel(HTTPChannel):\n    _mine = 1\n    def _arm(self):\n" \
                 "        self._deadline = None\n"
        self.assertEqual(violations(source, {"Channel": Channel}), [])
