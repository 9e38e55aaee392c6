"""Persistent SSH connection vs a fresh connection per command: commands/s and latency.

Runs M short commands at concurrency C, first over DSSR's one persistent connection
(``SSHRemote``), then opening a new connection (TCP + key exchange + auth) for every
command, as the reference downstream did. Without ``--host`` it starts a private
sshd on 127.0.0.1 (``tests/integration/sshd.py``)::

    cd /work/main && python -m bench.ssh_bench -m 500 -c 1,8
    python -m bench.ssh_bench --host login --user svc --key ~/.ssh/id_ed25519 --output squeue
"""

import argparse
import os
import pwd
import shlex
import tempfile
import time
from collections.abc import Callable

from twisted.internet.defer import Deferred, DeferredSemaphore, ensureDeferred, gatherResults
from twisted.internet.task import react

from dssr import compose
from dssr.settings import Settings, load
from tests.integration.sshd import SSHServer, generate_key

COMMANDS = {
    "true": ["true"],
    # About what `squeue` prints for a few hundred jobs (~9 kB).
    "squeue": ["seq", "-f", "%020g jarvice_job_name_here RUNNING", "1", "200"],
}


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(run: Callable[[], Deferred], count: int, concurrency: int) -> dict:
    """Run ``run()`` ``count`` times, ``concurrency`` at once; rate and latencies (s)."""
    limit = DeferredSemaphore(concurrency)
    latencies = []

    async def one():
        started = time.perf_counter()
        result = await run()
        if not result.ok:
            raise RuntimeError(f"command failed: {result}")
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await gatherResults([limit.run(lambda: ensureDeferred(one())) for _ in range(count)])
    elapsed = time.perf_counter() - started
    return {"rate": count / elapsed, "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99)}


def fresh_connection_runner(reactor, settings: Settings, argv: list[str]):
    """``run()`` that logs in anew for every command and logs out after it."""
    key = compose.private_key(settings)
    login = compose.ssh_login(settings, reactor, compose.known_hosts(settings), 30)
    command = shlex.join(argv).encode()

    async def run():
        conn = await login(settings.ssh_user, key)
        try:
            return await conn.execute(command, None, 1 << 20).result
        finally:
            await conn.close("done")

    return lambda: ensureDeferred(run())


async def bench(reactor, settings: Settings, argv: list[str], count: int,
                concurrencies: list[int]) -> None:
    remote = compose.ssh_remote(settings, reactor)
    remote.startService()
    fresh = fresh_connection_runner(reactor, settings, argv)
    await remote.run(argv)  # connect first: the persistent figures exclude the one login
    print(f"{count} x {shlex.join(argv)!r} on {settings.ssh_user}@{settings.cluster_addr}:"
          f"{settings.cluster_port}")
    print(f"{'mode':<12} {'C':>3} {'commands/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    try:
        for concurrency in concurrencies:
            for mode, run in (("persistent", lambda: remote.run(argv)), ("fresh", fresh)):
                figures = await measure(run, count, concurrency)
                print(f"{mode:<12} {concurrency:>3} {figures['rate']:>11.1f} "
                      f"{figures['p50'] * 1000:>8.1f} {figures['p99'] * 1000:>8.1f}")
    finally:
        await remote.stopService()


async def main(reactor, options) -> None:
    argv = COMMANDS[options.output]
    concurrencies = [int(c) for c in options.concurrency.split(",")]
    if options.host:
        with open(os.path.expanduser(options.key)) as key:
            settings = load(cli={
                "cluster_addr": options.host, "cluster_port": options.port,
                "ssh_user": options.user, "ssh_pkey": key.read(),
                "ssh_known_hosts": options.known_hosts})
        await bench(reactor, settings, argv, options.commands, concurrencies)
        return
    with tempfile.TemporaryDirectory() as directory:
        server = SSHServer(reactor, directory)
        private, public = generate_key()
        server.authorize(public)
        known_hosts = os.path.join(directory, "known_hosts")
        with open(known_hosts, "wb") as known:
            known.write(server.known_hosts_line())
        await server.start()
        try:
            settings = load(cli={
                "cluster_addr": server.host, "cluster_port": server.port,
                "ssh_user": pwd.getpwuid(os.geteuid()).pw_name,
                "ssh_pkey": private.decode(), "ssh_known_hosts": known_hosts})
            await bench(reactor, settings, argv, options.commands, concurrencies)
        finally:
            await server.stop()
        print(f"sshd accepted {server.accepted_logins()} logins")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--commands", type=int, default=500, help="commands per run")
    parser.add_argument("-c", "--concurrency", default="1,8",
                        help="comma-separated concurrencies to try")
    parser.add_argument("--output", choices=sorted(COMMANDS), default="true",
                        help="true (no output) or squeue (~9 kB of output)")
    parser.add_argument("--host", help="a real login node (default: start a local sshd)")
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--user", default=pwd.getpwuid(os.geteuid()).pw_name)
    parser.add_argument("--key", default="~/.ssh/id_ed25519", help="private key file")
    parser.add_argument("--known-hosts", default="~/.ssh/known_hosts")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    react(lambda reactor: ensureDeferred(main(reactor, arguments)))
