"""Submit latency and submits/s of a running DSSR, then cleanup of the jobs made.

Submits M sleeping one-core jobs at concurrency C (each C in turn, fresh jobs each
time), prints p50/p95/p99/max and submits/s, then ``/terminate`` + ``/exitstatus`` every
job (also on Ctrl-C), and ends with one JSON line of the figures::

    python -m bench.submit http://127.0.0.1:5150 -m 100 -c 1,8
"""

import argparse
import json
import os
import time
from collections import Counter

from bench.common import (
    Target,
    base_parser,
    clean_up,
    concurrencies,
    latency_figures,
    submit_jobs,
)


def main(options) -> None:
    target = Target.parse(options.base, options.auth)
    refs: list[dict] = []
    summary: dict = {"base": options.base, "jobs": options.jobs}
    print(f"{'C':>3} {'submits/s':>10} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} ms  errors")
    try:
        for concurrency in concurrencies(options.concurrency):
            names = [f"bench-{os.getpid()}-c{concurrency}-{i}" for i in range(options.jobs)]
            started = time.perf_counter()
            made, results = submit_jobs(target, names, concurrency, options.sleep)
            elapsed = time.perf_counter() - started
            refs += made
            errors = Counter(f"HTTP {code}" if code else body.decode()
                             for _, code, body, _ in results if code != 200)
            row = {"submits_per_s": round(len(made) / elapsed, 1),
                   **latency_figures([s for _, code, _, s in results if code == 200]),
                   "errors": dict(errors)}
            print(f"{concurrency:>3} {row['submits_per_s']:>10} {row['p50']:>8} "
                  f"{row['p95']:>8} {row['p99']:>8} {row['max']:>8}     "
                  f"{row['errors'] or 'none'}")
            summary[f"C={concurrency}"] = row
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up")
        summary["interrupted"] = True
    finally:
        started = time.perf_counter()
        summary["cleanup"] = dict(clean_up(target, refs))
        print(f"cleanup of {len(refs)} jobs in {time.perf_counter() - started:.1f} s: "
              f"{summary['cleanup']}")
    print(json.dumps(summary))


def parse_args(argv=None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("-m", "--jobs", type=int, default=100, help="jobs per concurrency")
    parser.add_argument("-c", "--concurrency", default="1,8",
                        help="comma-separated submits in flight")
    parser.add_argument("--sleep", type=int, default=86400, help="each job's sleep (s)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
