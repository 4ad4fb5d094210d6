"""Counting traffic under random schedules: the panel counts what Xray held.

A schedule mixes traffic, polls, polls that crash before their commit,
daemon restarts, outages and time passing. After every step, each client's
usage in the database must equal the bytes its counters held when a poll
was committed: everything sent, except what Xray itself lost. Bytes pushed
after the last committed poll and before a restart (or an outage, which is
a restart too) vanish with the daemon's memory; no panel can count them, so
the oracle moves them to `lost` instead of expecting them.

The panel's clock moves with the simulator's uptime: a step that lets time
pass advances both, as real seconds would. Every daemon, the first one
included, runs at least 3 s before anything else happens to it: restarts
are seen by uptime with 2 s of slack, so a daemon that restarts sooner than
that after its own start is, by design, not seen.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.conftest import panel_env
from webpanel import create_app
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.nodes import close_gateways
from webpanel.nodes import gateway
from webpanel.services import accounting
from webpanel.services import sync
from webpanel.services.accounting import PollResult
from webpanel.services.clients import create_client
from xray.simulator import Simulator

CLIENTS = 3
TIMEOUT = 2.0  # the same as the app's XRAY_TIMEOUT: one channel for all
BOOT_SECONDS = 3  # how long a daemon runs before anything happens to it

# Small amounts make raw values collide with the last ones; large ones go
# far past anything a 32-bit field could hold.
amounts = st.one_of(
    st.sampled_from([0, 1, 10**12]),
    st.integers(0, 2_000),
    st.integers(0, 10**12),
)
boot_seconds = st.integers(BOOT_SECONDS, 600)


class Crash(Exception):
    """The process died between reading the counters and committing."""


class PanelClock:
    """The panel's `now`, moved on together with the simulator's uptime."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> datetime:
        return utcnow() + timedelta(seconds=self.offset)


class World:
    """A simulator, an app on a fresh database, a few clients, and the oracle.

    The oracle keeps, per client email and direction: the bytes Xray holds
    that no committed poll has seen yet (`held`), the bytes the panel must
    have counted (`counted`) and the bytes a restart took away (`lost`).
    """

    def __init__(self, clients: int = CLIENTS) -> None:
        self._stack = ExitStack()
        try:
            self._open(clients)
        except BaseException:
            self._stack.close()
            raise

    def _open(self, clients: int) -> None:
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        self.simulator = Simulator().start()
        self._stack.callback(self.simulator.stop)
        self._stack.callback(close_gateways)

        app = create_app(panel_env(self.simulator.address), instance_path=folder)
        self._stack.enter_context(app.app_context())
        self._stack.enter_context(db.connection_context())

        # Both services compare uptimes with the wall time since their last
        # look: they must see the same passing time as the daemon.
        self.clock = PanelClock()
        for module in (accounting, sync):
            patch = mock.patch.object(module, "utcnow", self.clock.now)
            self._stack.enter_context(patch)

        self.emails = [create_client(f"client {i}").email for i in range(clients)]
        self.held = {email: [0, 0] for email in self.emails}
        self.counted = {email: [0, 0] for email in self.emails}
        self.lost = {email: [0, 0] for email in self.emails}
        self.polled = False  # a poll was committed: restarts can be seen
        self.restart_unseen = False
        self.pass_time(BOOT_SECONDS)

    def close(self) -> None:
        self._stack.close()

    # Steps

    def push(self, email: str, uplink: int, downlink: int) -> None:
        self.simulator.push_traffic(email, uplink=uplink, downlink=downlink)
        self.held[email][0] += uplink
        self.held[email][1] += downlink

    def poll(self) -> PollResult:
        """A poll that commits: everything Xray holds is now counted."""
        result = accounting.poll_node(Node.get(), TIMEOUT)
        assert result.online, result.error
        assert result.restarted == self.restart_unseen, "restart seen wrongly"
        assert result.counted == sum(map(sum, self.held.values()))
        for email in self.emails:
            for direction in (0, 1):
                self.counted[email][direction] += self.held[email][direction]
                self.held[email][direction] = 0
        self.polled = True
        self.restart_unseen = False
        return result

    def poll_that_crashes(self) -> None:
        """Read and write the deltas, then die before the commit."""
        real_commit = accounting._commit

        def commit_then_crash(*args: object, **kwargs: object) -> None:
            real_commit(*args, **kwargs)
            raise Crash

        crashing = mock.patch.object(accounting, "_commit", commit_then_crash)
        with crashing, pytest.raises(Crash):
            accounting.poll_node(Node.get(), TIMEOUT)

    def restart(self, boot: int) -> None:
        """The daemon restarts: it forgets users and counters."""
        self.simulator.restart()
        self._after_boot(boot)

    def outage(self, boot: int) -> None:
        """The daemon goes away for a while, a poll fails, then it is back."""
        self.simulator.stop()
        result = accounting.poll_node(Node.get(), TIMEOUT)
        assert not result.online
        self.simulator.start()
        self._after_boot(boot)
        self.poll()

    def pass_time(self, seconds: int) -> None:
        self.simulator.advance_uptime(seconds)
        self.clock.offset += seconds

    def reset_counters(self) -> None:
        """Someone else's QueryStats(reset=True): what it read is gone for us."""
        gateway(Node.get(), TIMEOUT).query_stats("user>>>", reset=True)
        self._forget_held()

    def _after_boot(self, boot: int) -> None:
        self._forget_held()
        self.restart_unseen = self.polled
        self.recover()
        self.pass_time(boot)

    def _forget_held(self) -> None:
        for email in self.emails:
            for direction in (0, 1):
                self.lost[email][direction] += self.held[email][direction]
                self.held[email][direction] = 0

    def recover(self, seconds: float = 10) -> None:
        """Put the users back; the channel needs a moment to reconnect."""
        deadline = time.monotonic() + seconds
        while not sync.recover_node(Node.get(), force=True, timeout=TIMEOUT).online:
            assert time.monotonic() < deadline, "the node did not come back"
            time.sleep(0.05)
        assert set(self.simulator.users()) >= set(self.emails)

    # Checks

    def usage(self, email: str) -> tuple[int, int]:
        client = Client.get(Client.email == email)
        return client.uplink, client.downlink

    def check(self) -> None:
        for email in self.emails:
            assert self.usage(email) == tuple(self.counted[email]), email


@pytest.fixture
def world() -> Iterator[World]:
    made = World()
    yield made
    made.close()


# Steps of a schedule, with the reprs Hypothesis prints for a failing one


@dataclass(frozen=True)
class Push:
    client: int
    uplink: int
    downlink: int

    def apply(self, world: World) -> None:
        world.push(world.emails[self.client], self.uplink, self.downlink)


@dataclass(frozen=True)
class Poll:
    def apply(self, world: World) -> None:
        world.poll()


@dataclass(frozen=True)
class PollThatCrashes:
    def apply(self, world: World) -> None:
        world.poll_that_crashes()


@dataclass(frozen=True)
class Restart:
    boot: int

    def apply(self, world: World) -> None:
        world.restart(self.boot)


@dataclass(frozen=True)
class Outage:
    boot: int

    def apply(self, world: World) -> None:
        world.outage(self.boot)


@dataclass(frozen=True)
class PassTime:
    seconds: int

    def apply(self, world: World) -> None:
        world.pass_time(self.seconds)


Step = Push | Poll | PollThatCrashes | Restart | Outage | PassTime

pushes = st.builds(Push, st.integers(0, CLIENTS - 1), amounts, amounts)
# Traffic and polls most often; an outage waits for the channel to
# reconnect (a quarter of a second or more), so it comes least often.
weighted = (
    [pushes] * 8
    + [st.just(Poll())] * 5
    + [st.just(PollThatCrashes())] * 2
    + [st.builds(Restart, boot_seconds)] * 2
    + [st.builds(PassTime, st.integers(1, 3_600))] * 2
    + [st.builds(Outage, boot_seconds)]
)
steps = st.sampled_from(weighted).flatmap(lambda step: step)


@settings(max_examples=40, deadline=None)
@given(schedule=st.lists(steps, min_size=8, max_size=40))
def test_it_counts_exactly_what_xray_held_under_any_schedule(
    schedule: list[Step],
) -> None:
    """Every client's usage equals the bytes its counters held when polled.

    Bytes pushed after the last committed poll and before a restart or an
    outage are lost by Xray itself: the oracle expects them to be missing.
    """
    world = World()
    try:
        for step in schedule:
            step.apply(world)
            world.check()
        world.poll()
        world.check()
    finally:
        world.close()


# Named examples, through the same World and oracle


def test_it_counts_1000_then_a_restart_then_200_as_1200(world: World) -> None:
    email = world.emails[0]
    world.push(email, 0, 1000)
    world.poll()

    world.restart(boot=5)
    world.push(email, 0, 200)
    result = world.poll()

    assert result.restarted
    assert world.usage(email) == (0, 1200)
    world.check()


def test_it_counts_1000_then_a_restart_then_5000_as_6000(world: World) -> None:
    email = world.emails[0]
    world.push(email, 0, 1000)
    world.poll()

    # The new counter grows past the old raw value: only uptime tells.
    world.restart(boot=5)
    world.push(email, 0, 5000)
    world.poll()

    assert world.usage(email) == (0, 6000)


def test_it_counts_a_reset_counter_fully_while_uptime_still_rises(
    world: World,
) -> None:
    email = world.emails[0]
    world.push(email, 700, 1000)
    world.poll()
    world.pass_time(3600)

    world.reset_counters()
    world.push(email, 30, 300)
    result = world.poll()

    assert not result.restarted
    assert world.usage(email) == (730, 1300)
    world.check()


def test_it_counts_once_what_a_crashed_poll_had_read(world: World) -> None:
    email = world.emails[1]
    world.push(email, 10, 20)

    world.poll_that_crashes()
    assert world.usage(email) == (0, 0)
    world.poll()

    assert world.usage(email) == (10, 20)


def test_it_counts_on_after_a_node_comes_back_from_an_outage(world: World) -> None:
    email = world.emails[2]
    world.push(email, 1, 1000)
    world.poll()
    world.push(email, 0, 50)  # after the last poll: lost with the daemon

    world.outage(boot=30)
    world.push(email, 2, 400)
    world.poll()

    assert world.usage(email) == (3, 1400)
    assert world.lost[email] == [0, 50]
    assert Node.get().state == "online"
    world.check()
