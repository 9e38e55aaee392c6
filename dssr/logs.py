"""Where DSSR's log goes, at which level, as text or JSON lines.

twistd picks its log observer after ``makeService`` has run, from the application's
``ILogObserver`` component if it has one (as a ``.tac`` file would set it). DSSR's
top service sets that component, so the level filter and format apply to every
event (Twisted's own included) while twistd's ``--logfile``/``--nodaemon`` choices
of destination are honoured. An explicit ``twistd --logger`` or ``--syslog`` wins.
"""

import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, cast

from twisted.application.service import IServiceCollection, MultiService
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    textFileLogObserver,
)
from twisted.python.logfile import LogFile

# JARVICE_SCHED_LOGLEVEL uses Python's numeric levels.
LEVELS = ((10, LogLevel.debug), (20, LogLevel.info), (30, LogLevel.warn),
          (40, LogLevel.error), (50, LogLevel.critical))


def level_of(number: int) -> LogLevel:
    """The Twisted level for a numeric (Python ``logging``) level: the nearest at or below."""
    chosen: LogLevel = LogLevel.debug
    for threshold, level in LEVELS:
        if number >= threshold:
            chosen = level
    return chosen


# The files DSSR logs to: sys.stdout, or twistd's LogFile (which Twisted takes as one).
def destination(twistd_options: Mapping[str, Any] | None) -> IO[Any] | None:
    """The file twistd would log to, or None when twistd must choose (syslog, --logger)."""
    if twistd_options is None:
        return sys.stdout
    if twistd_options.get("logger") or twistd_options.get("syslog"):
        return None
    path = twistd_options.get("logfile") or ""
    if path == "-" or (not path and twistd_options.get("nodaemon")):
        return sys.stdout
    logfile: IO[Any] = LogFile.fromFullPath(path or "twistd.log")
    return logfile


# Keys of Twisted's own (new and legacy) events that are plumbing, not the event's fields.
_INTERNAL = {"message", "format", "isError", "system", "time", "why", "failure"}
_PLAIN = (str, int, float, bool, type(None))
_LEGACY = "log_legacy"  # the namespace Twisted gives events of twisted.python.log


def _plain(value: object) -> object:
    """``value`` as JSON can hold it: plain values and lists/dicts of them, else its text."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return str(value)


def _logger(event: LogEvent) -> str:
    """The event's logger: its namespace, or for Twisted's legacy ``log.msg`` events
    (namespace ``log_legacy``) their system (``-``: just ``twisted``)."""
    namespace: str = event.get("log_namespace", "-")
    if namespace != _LEGACY:
        return namespace
    system: str | None = event.get("log_system", "-")
    return "twisted" if system in ("-", None) else system


def json_record(event: LogEvent) -> dict[str, object]:
    """The documented JSON log schema: ``time`` (ISO 8601 UTC), ``level``, ``logger``,
    ``message``, ``traceback`` for failures, then the event's own fields."""
    level = event.get("log_level")
    failure = event.get("log_failure") or event.get("failure")  # legacy log.err: "failure"
    legacy_failure = failure is not None and "log_failure" not in event
    record = {
        "time": datetime.fromtimestamp(event.get("log_time", 0), UTC)
        .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level.name if level is not None else "info",
        "logger": _logger(event),
        # A legacy failure's text ends with its traceback: that goes in "traceback".
        "message": (event.get("why") or "Unhandled error") if legacy_failure
        else formatEvent(event),
    }
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    whole = event.get("log_format", "")  # "{line}": the field is the message already
    for key, value in event.items():
        if (not key.startswith("log_") and key not in _INTERNAL and key not in record
                and whole != "{" + key + "}"):
            record[key] = _plain(value)
    return record


def json_lines_observer(output: IO[Any]) -> Callable[[LogEvent], None]:
    """One ``json_record`` a line."""
    def observe(event: LogEvent) -> None:
        output.write(json.dumps(json_record(event), separators=(",", ":")) + "\n")
        output.flush()

    return observe


def make_observer(output: IO[Any], level: int, json: bool) -> FilteringLogObserver:
    """An observer writing events at ``level`` or above to ``output``."""
    # ILogObserver has one method, __call__: a function provides it.
    writer = (cast(ILogObserver, json_lines_observer(output)) if json
              else textFileLogObserver(output))
    return FilteringLogObserver(writer, [LogLevelFilterPredicate(level_of(level))])


class LoggingMultiService(MultiService):
    """The process's top service; it hands twistd DSSR's log observer on attachment."""

    def __init__(self, observer_factory: Callable[[], ILogObserver | None]):
        super().__init__()
        self._observer_factory = observer_factory

    def setServiceParent(self, parent: IServiceCollection) -> None:
        super().setServiceParent(parent)
        set_component = getattr(parent, "setComponent", None)
        if set_component is not None:
            observer = self._observer_factory()
            if observer is not None:
                set_component(ILogObserver, observer)
