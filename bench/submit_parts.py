"""Where a submit's time goes on the cluster: its commands one by one over DSSR's own
SSH transport, at C=1 (p50 and p90 of M runs each).

``true`` (the channel, sshd's fork, the login shell), ``sh -c true`` (plus the shell
DSSR's programs run in), ``sbatch`` alone with a real job script on stdin, and
``sbatch`` inside the claim program (``dssr.jobfiles.CLAIM_SUBMIT``), as ``/submit``
runs it. Reads the settings from the environment (the rig's env file), cancels the
jobs it made and removes their claims::

    set -a; . /var/tmp/dssr-rig/env; set +a
    flock /var/tmp/dssr-rig.lock python -m bench.submit_parts -m 30
"""

import argparse
import base64
import os
import statistics
import time

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater, react

from bench.common import job_script
from dssr import compose, settings
from dssr.executors import singularity
from dssr.jobfiles import JobFiles, directory
from dssr.remote.logged import LoggedRemote
from dssr.slurm import commands
from dssr.slurm.cli import with_setup


async def main(reactor, options) -> None:
    config = settings.load().replace(**settings.from_environment(os.environ))
    remote = compose.ssh_remote(config, reactor)
    remote.service.startService()
    while remote.state()[0] != "connected":
        await deferLater(reactor, 0.1, lambda: None)
    files = JobFiles(LoggedRemote(remote, reactor, config.ssh_user), config.job_scratch_dir)
    script = base64.b64decode(job_script("sleep 86400")).decode()
    prefix = f"parts-{os.getpid()}"
    made: list[str] = []

    def job(name: str):
        return singularity.prepare(script, name, 1, False, compose.executor_settings(config),
                                   []).batch

    def plain(i: int):
        batch = job(f"{prefix}-p{i}")
        return commands.sbatch(batch), batch.script.encode()

    def claimed(i: int):
        batch = job(f"{prefix}-c{i}")
        return (with_setup(files.setup(f"{prefix}-c{i}"), commands.sbatch(batch)),
                batch.script.encode())

    async def measure(label: str, make) -> None:
        times = []
        for i in range(options.jobs):
            argv, stdin = make(i)
            started = time.perf_counter()
            result = await remote.run(argv, stdin=stdin)
            times.append((time.perf_counter() - started) * 1000)
            if result.status != 0:
                print(f"{label}: exit {result.status}: {result.stderr[:200]!r}")
                return
            out = result.stdout.decode().strip().split(";")[0]
            if out.isdigit():
                made.append(out)
        times.sort()
        print(f"{label:24} p50 {statistics.median(times):6.2f}  "
              f"p90 {times[int(len(times) * 0.9)]:6.2f} ms")

    try:
        await measure("true", lambda i: (["true"], None))
        await measure("sh -c true", lambda i: (["sh", "-c", "true"], None))
        await measure("sbatch", plain)
        await measure("claim + sbatch", claimed)
    finally:
        for jobid in made:
            await remote.run(["scancel", jobid])
        await remote.run(["sh", "-c", 'rm -f -- "$1"/"$2"-*', "sh",
                          directory(config.job_scratch_dir), prefix])
        remote.service.stopService()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--jobs", type=int, default=30, help="runs of each command")
    react(lambda reactor: ensureDeferred(main(reactor, parser.parse_args())))
