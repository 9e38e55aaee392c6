"""``/metrics``: what DSSR does, in Prometheus text format.

The API counts its own calls here; everything else is read at scrape time from the
connector's ``metrics()`` (declared by ``IConnector``), so components keep plain
counters and know nothing of Prometheus.
"""

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from dssr import __version__
from dssr.connectors.interfaces import IConnector
from dssr.samples import Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """Count and latency of API calls, by endpoint and status code."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self._sums: dict[str, float] = {}

    def observe(self, endpoint: str, code: int, seconds: float) -> None:
        self.counts[(endpoint, str(code))] += 1
        self._buckets[endpoint][bisect_left(BUCKETS, seconds)] += 1
        self._sums[endpoint] = self._sums.get(endpoint, 0) + seconds

    def families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("dssr_http_requests", "API calls answered",
                                       labels=["endpoint", "code"])
        for (endpoint, code), count in sorted(self.counts.items()):
            requests.add_metric([endpoint, code], count)
        yield requests
        latency = HistogramMetricFamily("dssr_http_request_duration_seconds",
                                        "Time to answer API calls", labels=["endpoint"])
        for endpoint, counts in sorted(self._buckets.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([endpoint], buckets, self._sums[endpoint])
        yield latency


def families_of(samples: Iterable[Sample]) -> Iterator[Metric]:
    """Group ``Sample`` values into Prometheus metric families."""
    grouped: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        grouped[sample.name].append(sample)
    for name, members in grouped.items():
        first = members[0]
        labels = sorted(first.labels)
        kind = CounterMetricFamily if first.kind == "counter" else GaugeMetricFamily
        family = kind(name, first.help, labels=labels)
        for sample in members:
            family.add_metric([str(sample.labels[label]) for label in labels], sample.value)
        yield family


class Metrics:
    """Everything ``/metrics`` shows: the API's own counts and the connector's samples."""

    def __init__(self, connector: IConnector):
        self.requests = RequestMetrics()
        self._connector = connector
        # More than the connector's samples (the proxy's).
        self._sources: list[Callable[[], Iterable[Sample]]] = []
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def collect(self) -> Iterator[Metric]:
        build = GaugeMetricFamily("dssr_build_info", "The running DSSR's version (always 1)",
                                  labels=["version"])
        build.add_metric([__version__], 1)
        yield build
        yield from self.requests.families()
        yield from families_of([*self._connector.metrics(),
                                *(sample for source in self._sources for sample in source())])

    def add(self, source: Callable[[], Iterable[Sample]]) -> None:
        """Show the ``Sample`` values ``source()`` gives too (e.g. the proxy's)."""
        self._sources.append(source)

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric now."""
        return generate_latest(self._registry)
