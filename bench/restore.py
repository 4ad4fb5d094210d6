"""Putting 10,000 users back into a freshly restarted v2ray, against one by one.

Ours is `sync.recover_node(node, force=True)`: v2ray 4.34 can't list its
users, so it re-adds everyone over one channel with a bounded pool of
concurrent calls. The baseline sends one AddUser after another over one
channel. The daemon is killed and started again before each measurement,
and afterwards we check that it really holds all 10,000 users.

    .venv/bin/python bench/restore.py
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import common

from tests.daemons import V2RayServer
from webpanel.models import Node
from webpanel.nodes import gateway
from webpanel.services import sync
from xray.client import AlreadyExists
from xray.client import User
from xray.client import XrayClient

T = TypeVar("T")

CLIENTS = 10_000
ROUNDS = 2  # each round: restart + baseline, restart + ours; best of each


def main() -> None:
    with common.workspace("restore") as folder:
        server = V2RayServer(folder / "v2ray")
        server.start()
        try:
            with common.panel(
                server.api_address, folder, XRAY_FLAVOR="v2ray", XRAY_FLOW=""
            ):
                figures = measure(server)
        finally:
            server.kill()
    common.report(figures)


def measure(server: V2RayServer) -> dict[str, float]:
    rows = common.make_clients(CLIENTS, flow="")
    users = [User(email=row["email"], uuid=row["uuid"]) for row in rows]
    node = common.main_node()

    baseline, ours = [], []
    for _ in range(ROUNDS):
        baseline.append(one_by_one(server, users))
        ours.append(pooled(server, node))
    show("baseline, one AddUser after another", baseline)
    show(f"ours, recover_node with {sync.POOL_SIZE} calls in flight", ours)

    check_daemon_holds(server, users)
    best = min(ours)
    return {
        "restore_10k_s": round(best.seconds, 3),
        "restore_ratio": common.ratio(min(baseline).seconds, best.seconds),
    }


@dataclass(frozen=True, order=True)
class Run:
    seconds: float
    our_cpu: float  # CPU seconds this process used meanwhile
    daemon_cpu: float  # and the daemon


def measured(server: V2RayServer, call: Callable[[], T]) -> tuple[Run, T]:
    """Time a call, and the CPU it cost here and in the daemon."""
    ours, daemon = process_cpu(os.getpid()), process_cpu(server.pid)
    seconds, result = common.timed(call)
    ours, daemon = process_cpu(os.getpid()) - ours, process_cpu(server.pid) - daemon
    return Run(seconds, ours, daemon), result


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def show(label: str, runs: list[Run]) -> None:
    best = min(runs)
    common.say(
        f"{label} (s): {common.seconds_text([run.seconds for run in runs])}; "
        f"best used {best.our_cpu:.2f} s CPU here, {best.daemon_cpu:.2f} s in v2ray"
    )


def restart(server: V2RayServer, channel: XrayClient) -> None:
    """Kill and start the daemon: it comes back with none of our users."""
    server.kill()
    server.start()
    common.wait_until_answering(channel)


def one_by_one(server: V2RayServer, users: list[User]) -> Run:
    with XrayClient(
        server.api_address, prefix=server.prefix, timeout=common.TIMEOUT
    ) as channel:
        restart(server, channel)
        run, _ = measured(server, lambda: add_each(channel, server.inbound_tag, users))
    return run


def add_each(channel: XrayClient, tag: str, users: list[User]) -> None:
    for user in users:
        channel.add_user(tag, user)


def pooled(server: V2RayServer, node: Node) -> Run:
    restart(server, gateway(node, common.TIMEOUT))
    run, result = measured(
        server, lambda: sync.recover_node(node, force=True, timeout=common.TIMEOUT)
    )
    common.check(result.online, f"recovery failed: {result.error}")
    common.check(result.added == CLIENTS, f"recovery added {result.added} users")
    return run


def check_daemon_holds(server: V2RayServer, users: list[User]) -> None:
    """Adding every user again must fail with AlreadyExists, for all 10,000."""
    with XrayClient(
        server.api_address, prefix=server.prefix, timeout=common.TIMEOUT
    ) as channel:
        failures = channel.add_users(server.inbound_tag, users)
    held = sum(isinstance(error, AlreadyExists) for error in failures.values())
    common.check(held == len(users), f"the daemon holds {held} of {len(users)} users")
    common.say(f"checked: the daemon holds all {held} users")


if __name__ == "__main__":
    main()
