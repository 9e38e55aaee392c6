"""``Sample``: one value a component reports for ``/metrics``.

No dependencies, so any layer (the transport included) can report without knowing
Prometheus; ``dssr.metrics`` turns samples into Prometheus text at scrape time.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    """One value a component reports: ``kind`` is ``counter`` or ``gauge``."""

    name: str
    kind: str
    help: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
