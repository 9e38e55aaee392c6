"""A ``GET .../jobs`` answer cut down to what DSSR reads of it, in a child process.

slurmrestd describes each job in 2.4 KB (v0.0.38) to 6 KB (v0.0.45) of JSON: a queue of
5000 jobs is a 30 MB answer, and reading it takes DSSR's one reactor thread most of a
second per snapshot, during which no request is answered. ``squeue`` over SSH costs DSSR
no such time: the cluster formats the few fields DSSR asks for. So a large answer is
read by ``python -m dssr.slurm.rest.shrink PREFIX``, on another core: it reads the
answer on stdin and prints it with only the jobs whose name starts with ``PREFIX``, each
with only the fields ``answers.queue`` reads (exit 2 when the answer is not JSON).

Imports only the standard library: it starts once per large snapshot.
"""

import json
import sys
from typing import Any

# What answers.queue_job and answers.elapsed read of a job.
FIELDS = ("job_id", "name", "job_state", "nodes", "user_name", "state_reason",
          "start_time", "end_time", "suspend_time", "pre_sus_time")


def shrink(document: Any, prefix: str) -> Any:
    """``document`` with only the jobs named ``prefix``..., each with only ``FIELDS``;
    all else (errors, warnings, a job that is not an object) as it was."""
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), list):
        return document
    kept = []
    for job in document["jobs"]:
        if not isinstance(job, dict):
            kept.append(job)  # answers.queue refuses it, as it would the whole answer
        elif isinstance(job.get("name"), str) and job["name"].startswith(prefix):
            kept.append({field: job[field] for field in FIELDS if field in job})
    return {**document, "jobs": kept}


def main() -> int:
    try:
        document = json.loads(sys.stdin.buffer.read())
    except ValueError:
        return 2
    sys.stdout.write(json.dumps(shrink(document, sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
