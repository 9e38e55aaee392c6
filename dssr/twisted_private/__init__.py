"""Every use DSSR makes of a Twisted member that is private (``_``-named) or undocumented.

Nowhere else in ``dssr/`` does (``tests/test_twisted_private.py`` scans for it), so a
Twisted release that renames one breaks here, where each is listed with what it is
relied on for, and is driven by a unit test: ``ssh.py`` (Conch's transport, its key
exchange and cipher state, for AES-GCM framing; Conch's loggers) and ``http.py``
(``HTTPChannel``'s request-head parser, for the edge's admission).

Checked against the Twisted releases in ``CHECKED`` (the floor in pyproject.toml, run by
``tox -e floors``, and the newest, run by ``tox``); the members are checked again on
every Twisted upgrade, by those tests.
"""

CHECKED = ("26.4.0", "26.10.0")  # the floor and the newest, each run by tox
