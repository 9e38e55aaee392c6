"""Where a CI run's time went: the slowest test modules and tests, from trial's
``--reporter=timing`` output (a ``<test id> ... [OK]`` line, then ``(N secs)``). Trial
times no test it ran side by side (``-j``: 0 secs); tests/phases.py's ``== phase:`` lines
time those phases as a whole."""

import re
import sys
from collections import Counter

RESULT = re.compile(r"^(tests\.[\w.]+) \.\.\. \[\w+\]$")
SECONDS = re.compile(r"^\((\d+(?:\.\d+)?) secs\)$")


def timings(lines):
    """``(test id, seconds)`` for every test the log timed."""
    test = None
    for line in lines:
        line = line.rstrip("\n")
        found = RESULT.match(line)
        if found:
            test = found.group(1)
            continue
        seconds = SECONDS.match(line)
        if seconds and test is not None:
            yield test, float(seconds.group(1))
            test = None


def main(path: str, count: int = 10) -> None:
    with open(path, encoding="utf-8", errors="replace") as log:
        tests = {test: seconds for test, seconds in timings(log) if seconds > 0}
    modules = Counter()
    for test, seconds in tests.items():
        modules[test.rsplit(".", 2)[0]] += seconds
    print(f"where the time went: {sum(tests.values()):.0f} s in {len(tests)} tests timed one "
          "by one")
    for module, seconds in modules.most_common(count):
        print(f"  {seconds:7.1f} s  {module}")
    print("slowest tests:")
    for test, seconds in sorted(tests.items(), key=lambda item: -item[1])[:count]:
        print(f"  {seconds:7.1f} s  {test}")


if __name__ == "__main__":
    main(sys.argv[1])
