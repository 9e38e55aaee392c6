"""Upstream-style polling of a running DSSR: throughput, latency, cluster cost per pass.

Submits N sleeping jobs, then for each concurrency C runs poll passes for D seconds —
``/running``, ``/queued``, then ``/runstatus`` of every job, C requests in flight,
one pass after another — and reads DSSR's ``/metrics`` for the remote commands and
SSH logins each pass cost. With ``--pid`` it also reports DSSR's CPU and its RSS
before and after ``--status-count`` status requests. It ends with one JSON line of
every figure and terminates its jobs (also on Ctrl-C)::

    python -m bench.poll http://127.0.0.1:5150 -n 50 -c 1,8,32 -d 10 --pid PID
"""

import argparse
import itertools
import json
import multiprocessing
import os
import queue
import resource
import signal
import time
from collections import Counter, defaultdict

from bench.common import (
    Target,
    base_parser,
    clean_up,
    concurrencies,
    cpu_seconds,
    drive,
    error_kind,
    latency_figures,
    per_pass,
    percentile,
    rss_kib,
    scrape,
    submit_jobs,
)

LISTS = ("/running", "/queued")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _record(results, latencies: dict, errors: Counter) -> None:
    for label, code, body, seconds in results:
        kind = error_kind(label, code, body)
        if kind:
            errors[f"{label} {kind}"] += 1
        else:
            latencies[label].append(seconds)


def _poll_worker(index, procs, connections, output, target, items, barrier, go):
    """One client process: its share of every pass, in step with the others."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    mine = items[index::procs]
    latencies, errors, releases = defaultdict(list), Counter(), []
    cpu = _own_cpu()
    while True:
        barrier.wait()
        releases.append(time.perf_counter())
        if not go.value:
            break
        _record(drive(target, mine, connections), latencies, errors)
    output.put({"latencies": dict(latencies), "errors": errors, "releases": releases,
                "cpu": _own_cpu() - cpu})


def _status_worker(index, procs, connections, output, target, requests, count):
    """One client process: its share of ``count`` status requests, no passes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    latencies, errors = defaultdict(list), Counter()
    cpu, started = _own_cpu(), time.perf_counter()
    items = (("/runstatus", requests[i % len(requests)]) for i in range(index, count, procs))
    _record(drive(target, items, connections), latencies, errors)
    output.put({"latencies": dict(latencies), "errors": errors,  # start and end: no passes
                "releases": [started, time.perf_counter()], "cpu": _own_cpu() - cpu})


class Workers:
    """Client processes, each with its share of C connections; killed on Ctrl-C."""

    def __init__(self):
        self.live: list[multiprocessing.Process] = []

    def run(self, procs: int, concurrency: int, work, *args) -> list[dict]:
        procs = min(procs, concurrency)
        output = multiprocessing.Queue()
        self.live = [
            multiprocessing.Process(target=work, args=(
                i, procs, concurrency // procs + (i < concurrency % procs), output, *args))
            for i in range(procs)]
        for process in self.live:
            process.start()
        reports = []
        while len(reports) < len(self.live):
            try:
                reports.append(output.get(timeout=1))
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in self.live):
                    raise RuntimeError("a client process failed (traceback above)") from None
        self.stop()
        return reports

    def stop(self) -> None:
        for process in self.live:
            if process.is_alive():
                process.terminate()
            process.join()
        self.live = []


def poll_phase(workers: Workers, target: Target, items, concurrency: int, seconds: float,
               procs: int) -> list[dict]:
    """Back-to-back passes over ``items`` for ``seconds``; the workers' reports."""
    procs = min(procs, concurrency)
    end = time.monotonic() + seconds
    go = multiprocessing.Value("b", 1, lock=False)

    def decide():
        go.value = time.monotonic() < end

    barrier = multiprocessing.Barrier(procs, action=decide)
    return workers.run(procs, concurrency, _poll_worker, target, items, barrier, go)


def figures(reports: list[dict]) -> dict:
    """Rates, latencies, pass durations and errors from the workers' reports."""
    latencies, errors = defaultdict(list), Counter()
    for report in reports:
        for label, values in report["latencies"].items():
            latencies[label].extend(values)
        errors.update(report["errors"])
    releases = reports[0]["releases"]
    wall = releases[-1] - releases[0]
    passes = [b - a for a, b in itertools.pairwise(releases)] if len(releases) > 2 else []
    count = sum(len(v) for v in latencies.values()) + sum(errors.values())
    return {
        "seconds": round(wall, 2), "requests": count,
        "requests_per_s": round(count / wall, 1),
        "endpoints": {label: {"per_s": round(len(values) / wall, 1),
                              **latency_figures(values)}
                      for label, values in sorted(latencies.items())},
        "passes": len(passes),
        "pass_ms": {"p50": round(percentile(passes, .5) * 1000, 1),
                    "max": round(max(passes, default=0) * 1000, 1)},
        "errors": dict(errors),
        "client_cpu_pct": round(100 * sum(r["cpu"] for r in reports) / wall, 1),
    }


def show(title: str, result: dict) -> None:
    print(f"\n== {title}: {result['requests']} requests in {result['seconds']} s = "
          f"{result['requests_per_s']} req/s; client CPU {result['client_cpu_pct']}%"
          + (f", DSSR CPU {result['server_cpu_pct']}%" if "server_cpu_pct" in result else ""))
    if result.get("passes"):
        print(f"   passes {result['passes']}: p50 {result['pass_ms']['p50']} ms, "
              f"max {result['pass_ms']['max']} ms; per pass {result.get('per_pass', {})}")
    print(f"   {'endpoint':<12} {'req/s':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} ms")
    for label, row in result["endpoints"].items():
        print(f"   {label:<12} {row['per_s']:>8} {row['p50']:>7} {row['p90']:>7} "
              f"{row['p99']:>7} {row['max']:>7}")
    print(f"   errors: {result['errors'] or 'none'}")


def measured(target: Target, pid: int | None, run) -> dict:
    """``run()``'s figures, plus DSSR's CPU and its counters per pass."""
    before, cpu = scrape(target), cpu_seconds(pid) if pid else 0.0
    result = figures(run())
    if pid:
        result["server_cpu_pct"] = round(100 * (cpu_seconds(pid) - cpu) / result["seconds"], 1)
    if result["passes"]:
        result["per_pass"] = per_pass(before, scrape(target), result["passes"])
    return result


def bench(options, target: Target, workers: Workers, refs: list[dict]) -> dict:
    summary: dict = {"jobs": len(refs)}
    listed = {path: sum(ref["jobid"] in {j for _, j in target.json(path)} for ref in refs)
              for path in LISTS}
    print(f"{len(refs)} jobs: {listed['/running']} running, {listed['/queued']} queued")
    summary["listed"] = listed
    items = [(path, target.request(path)) for path in LISTS]
    items += [("/runstatus", target.request("/runstatus", ref)) for ref in refs]
    for concurrency in concurrencies(options.concurrency):
        result = measured(target, options.pid, lambda c=concurrency: poll_phase(
            workers, target, items, c, options.duration, options.procs))
        show(f"N={len(refs)} C={concurrency}", result)
        summary[f"C={concurrency}"] = result
    if options.pid and options.status_count:
        requests = [request for label, request in items if label == "/runstatus"]
        before = rss_kib(options.pid)
        result = measured(target, options.pid, lambda: workers.run(
            options.procs, options.status_concurrency, _status_worker, target, requests,
            options.status_count))
        result.update(rss_kib_before=before, rss_kib_after=rss_kib(options.pid))
        show(f"memory: {options.status_count} status requests at "
             f"C={options.status_concurrency}", result)
        print(f"   DSSR RSS {before} KiB before, {result['rss_kib_after']} KiB after "
              f"({result['rss_kib_after'] - before:+} KiB)")
        summary["memory"] = result
    return summary


def main(options) -> None:
    target = Target.parse(options.base, options.auth)
    workers, refs = Workers(), []
    names = [f"bench-{os.getpid()}-{i}" for i in range(options.jobs)]
    summary: dict = {"base": options.base, "procs": options.procs,
                     "loadavg_before": os.getloadavg()}
    try:
        started = time.perf_counter()
        refs, results = submit_jobs(target, names, options.submit_concurrency, options.sleep)
        failed = Counter(f"HTTP {code}" for _, code, _, _ in results if code != 200)
        print(f"submitted {len(refs)} jobs in {time.perf_counter() - started:.1f} s"
              + (f"; failed: {dict(failed)}" if failed else ""))
        if not refs:
            raise SystemExit("no job could be submitted: is DSSR ready (/ready)?")
        summary.update(bench(options, target, workers, refs))
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up")
        summary["interrupted"] = True
    finally:
        workers.stop()
        if not options.keep_jobs:
            summary["cleanup"] = dict(clean_up(target, refs))
            print(f"cleanup: {summary['cleanup']}")
    print(json.dumps(summary))


def parse_args(argv=None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("-n", "--jobs", type=int, default=200, help="jobs to submit")
    parser.add_argument("-c", "--concurrency", default="1,8,32",
                        help="comma-separated requests in flight")
    parser.add_argument("-d", "--duration", type=float, default=10.0,
                        help="seconds of polling per concurrency")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--pid", type=int, help="DSSR's pid (for its CPU and RSS)")
    parser.add_argument("--status-count", type=int, default=100_000,
                        help="status requests for the memory check (needs --pid; 0: skip)")
    parser.add_argument("--status-concurrency", type=int, default=8)
    parser.add_argument("--submit-concurrency", type=int, default=8)
    parser.add_argument("--sleep", type=int, default=86400, help="each job's sleep (s)")
    parser.add_argument("--keep-jobs", action="store_true",
                        help="leave the jobs to the caller (e.g. scancel -u on the cluster: "
                             "faster than DSSR's /terminate of each of thousands)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
