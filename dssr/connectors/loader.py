"""Find a connector by name or dotted path and build it."""

import importlib
import importlib.util
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from dssr.connectors.interfaces import IConnector

if TYPE_CHECKING:
    from dssr.settings import Settings

# The builtin connectors' factories: the dummy's own module, the Slurm connector's
# assembly in the composition root.
BUILTIN = {"dummy": "dssr.connectors.dummy", "slurm": "dssr.compose.slurm_connector"}
# The reference downstream names its connectors by module path; accept those too.
REFERENCE_NAME = re.compile(r"connectors\.(\w+)\.connector")
# ``make_connector(settings, reactor)``, or any callable taking the same arguments.
Factory = Callable[..., object]


class ConnectorError(Exception):
    """The configured connector cannot be loaded or is not a connector."""


def resolve(spec: str) -> Factory:
    """The factory for ``spec``: a builtin name, a reference module path, or a dotted path.

    A module must define ``make_connector(settings, reactor)``; any other dotted path
    names a callable taking the same arguments (e.g. a connector class).
    """
    reference = REFERENCE_NAME.fullmatch(spec)
    if reference and reference.group(1) in BUILTIN:
        spec = reference.group(1)
    path = BUILTIN.get(spec, spec)
    if "." not in path:
        # A bare name is a builtin's, misspelt, far more often than a module's.
        if importlib.util.find_spec(path) is None:
            raise ConnectorError(f"connector {spec!r} cannot be imported: the builtin "
                                 f"connectors are {' and '.join(sorted(BUILTIN))}, a "
                                 f"third-party one is a module or dotted path")
    try:
        module = importlib.import_module(path)
        attribute = "make_connector"
    except ImportError as error:
        module_path, _, attribute = path.rpartition(".")
        if not module_path:
            raise ConnectorError(f"connector {spec!r} cannot be imported: {error}") from None
        try:
            module = importlib.import_module(module_path)
        except ImportError as inner:
            raise ConnectorError(f"connector {spec!r} cannot be imported: {inner}") from None
    factory: object = getattr(module, attribute, None)
    if not callable(factory):
        raise ConnectorError(f"connector {spec!r}: {module.__name__} has no {attribute}()")
    return factory


def is_embedded(factory: Factory) -> bool:
    """Whether ``factory`` is the embedded dummy connector's (it runs nothing anywhere)."""
    return factory is resolve("dummy")


def build(factory: Factory, settings: "Settings", reactor: Any) -> IConnector:
    """Call ``factory`` and check that what it made provides ``IConnector``."""
    connector = factory(settings, reactor)
    if not IConnector.providedBy(connector):
        raise ConnectorError(f"{factory!r} made {connector!r}, which does not provide IConnector")
    try:
        verifyObject(IConnector, connector)
    except Invalid as error:
        raise ConnectorError(f"{factory!r} made {connector!r}, which does not provide "
                             f"IConnector: {error}") from None
    return connector
