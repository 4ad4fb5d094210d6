"""Many writers on one SQLite file, and a hung Xray beside the pages."""

from __future__ import annotations

import http.cookiejar
import re
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter as Tally
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.daemons import eventually
from webpanel import jobs
from webpanel import runtime as runtime_module
from webpanel.auth import create_admin
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import db
from webpanel.runtime import start_runtime
from webpanel.services import accounting
from webpanel.services.clients import create_client
from xray.simulator import Simulator

THREADS = 8
WRITES = 500
PASSWORD = "correct horse battery"
QUICK_PAGE_S = 1.0
JOBS = ("poll", "recover", "enforce")  # the ones that talk to Xray
STALLED_RUNS = 3
EVERY_SECOND = {"POLL_SECONDS": "1", "RECOVER_SECONDS": "1", "ENFORCE_SECONDS": "1"}


def in_threads(app: Flask, work: Callable[[int], None]) -> list[BaseException]:
    """Run work(0..THREADS-1) at once, each thread on its own connection."""
    start = threading.Barrier(THREADS)

    def run(index: int) -> None:
        with app.app_context(), db.connection_context():
            start.wait()
            work(index)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        done = [pool.submit(run, index) for index in range(THREADS)]
        errors = [future.exception(timeout=120) for future in done]
    return [error for error in errors if error is not None]


def summary(errors: list[BaseException]) -> Tally[str]:
    return Tally(f"{type(error).__name__}: {error}" for error in errors)


# Many writers


def test_it_adds_usage_from_eight_threads_without_losing_a_byte(app: Flask) -> None:
    shared = create_client("shared")
    own = [create_client(f"writer {i}") for i in range(THREADS)]

    def add_usage(index: int) -> None:
        for n in range(1, WRITES + 1):
            with db.atomic():
                Client.update(
                    uplink=Client.uplink + n, downlink=Client.downlink + 2 * n
                ).where(Client.id.in_([shared.id, own[index].id])).execute()

    errors = in_threads(app, add_usage)

    assert not errors, summary(errors)
    per_thread = WRITES * (WRITES + 1) // 2
    assert Client.get_by_id(shared.id).uplink == THREADS * per_thread
    assert Client.get_by_id(shared.id).downlink == THREADS * 2 * per_thread
    assert all(Client.get_by_id(c.id).uplink == per_thread for c in own)


def test_it_creates_clients_from_eight_threads_without_a_locked_database(
    app: Flask, simulator: Simulator
) -> None:
    def create(index: int) -> None:
        for n in range(WRITES):
            create_client(f"thread {index} client {n}")

    errors = in_threads(app, create)

    assert not errors, summary(errors)
    emails = {email for (email,) in Client.select(Client.email).tuples()}
    assert emails == {f"c{n}" for n in range(1, THREADS * WRITES + 1)}
    assert set(simulator.users()) == emails


def test_it_polls_while_usage_is_written_without_a_locked_database(
    app: Flask, simulator: Simulator
) -> None:
    polled = create_client("polled")
    written = create_client("written")
    pushed = 0

    def poll_or_write(index: int) -> None:
        nonlocal pushed
        for n in range(1, WRITES + 1):
            if index == 0:
                simulator.push_traffic(polled.email, downlink=n)
                pushed += n
                accounting.poll_node(Node.get())
            else:
                with db.atomic():
                    Client.update(uplink=Client.uplink + 1).where(
                        Client.id == written.id
                    ).execute()

    errors = in_threads(app, poll_or_write)

    assert not errors, summary(errors)
    assert Client.get_by_id(polled.id).downlink == pushed
    assert Client.get_by_id(written.id).uplink == (THREADS - 1) * WRITES


# Two polls at once


def test_it_counts_once_when_two_polls_of_one_node_overlap(
    app: Flask, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = create_client("alice")
    simulator.push_traffic(client.email, downlink=1000)
    accounting.poll_node(Node.get())
    simulator.push_traffic(client.email, downlink=100)

    # The first poll (the job, say) has read 1100 and waits for the
    # database; a second one (`flask poll`, say) reads 1110 and commits.
    has_read, may_commit = threading.Event(), threading.Event()
    real_user_traffic = accounting.user_traffic

    def first_waits(raw: dict[str, int]) -> dict[str, tuple[int, int]]:
        if threading.current_thread().name == "first poll":
            has_read.set()
            may_commit.wait(10)
        return real_user_traffic(raw)

    monkeypatch.setattr(accounting, "user_traffic", first_waits)

    results: list[accounting.PollResult] = []

    def first_poll() -> None:
        with app.app_context(), db.connection_context():
            results.append(accounting.poll_node(Node.get()))

    first = threading.Thread(target=first_poll, name="first poll")
    first.start()
    assert has_read.wait(10)
    simulator.push_traffic(client.email, downlink=10)
    accounting.poll_node(Node.get())
    may_commit.set()
    first.join(10)

    assert len(results) == 1, "the first poll did not finish"
    assert Client.get_by_id(client.id).downlink == 1110


# A hung Xray


class JobGauge:
    """Counts the runs of each job, and how many ran at once at most."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: Tally[str] = Tally()
        self.most: Tally[str] = Tally()
        self.started: Tally[str] = Tally()

    def wrap(self, name: str, job: Callable[[Flask], None]) -> Callable[[Flask], None]:
        def counted(app: Flask) -> None:
            with self._lock:
                self.running[name] += 1
                self.started[name] += 1
                self.most[name] = max(self.most[name], self.running[name])
            try:
                job(app)
            finally:
                with self._lock:
                    self.running[name] -= 1

        return counted


class Browser:
    """An admin's browser on loopback: cookies kept, no proxy in between."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        )

    def get(self, path: str) -> tuple[int, str, float]:
        """(status, body, seconds) of GET path; fails after 10 s."""
        started = time.monotonic()
        with self.opener.open(self.base + path, timeout=10) as response:
            body = response.read().decode()
            return response.status, body, time.monotonic() - started

    def sign_in(self, username: str, password: str) -> None:
        _, page, _ = self.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = {"username": username, "password": password, "csrf_token": token}
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.base + "/login", data, timeout=10) as response:
            assert response.url.endswith("/clients"), "sign-in did not go through"


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], str]]:
    """Serve apps on free loopback ports; stopped at teardown."""
    servers = []

    def start(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def node_state(app: Flask) -> str:
    with app.app_context(), db.connection_context():
        return Node.get().state


def test_it_runs_one_job_at_a_time_and_answers_pages_while_xray_hangs(
    make_app: Callable[..., Flask],
    simulator: Simulator,
    serve: Callable[[Flask], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gauge = JobGauge()
    for name in JOBS:
        job = getattr(jobs, f"{name}_job")
        monkeypatch.setattr(runtime_module, f"{name}_job", gauge.wrap(name, job))
    app = make_app(simulator.address, XRAY_TIMEOUT="1", **EVERY_SECOND)
    with app.app_context(), db.connection_context():
        create_admin("root", PASSWORD)
        create_client("alice")
    address = serve(app)
    stranger, admin = Browser(address), Browser(address)
    admin.sign_in("root", PASSWORD)
    pages = [
        (stranger, "/login"),
        (admin, "/clients"),
        (admin, "/nodes/banner"),
    ]
    runtime = start_runtime(app)
    assert runtime is not None

    def state_is(expected: str) -> None:
        assert node_state(app) == expected

    eventually(lambda: state_is("online"), retry_on=AssertionError, timeout=10)

    # Every call now outlasts its 1 s deadline by 2 s: jobs run long.
    simulator.stall(3)
    before = gauge.started.copy()
    slowest = 0.0
    deadline = time.monotonic() + 30
    # Several runs of each job fall due while another one waits on Xray.
    while min((gauge.started - before)[job] for job in JOBS) < STALLED_RUNS:
        assert time.monotonic() < deadline, gauge.started - before
        for browser, path in pages:
            status, _, seconds = browser.get(path)
            assert status == 200, path
            slowest = max(slowest, seconds)
        time.sleep(0.1)
    offline_while_stalled = node_state(app)

    simulator.stall(0)
    eventually(lambda: state_is("online"), retry_on=AssertionError, timeout=15)
    runtime.stop()

    assert offline_while_stalled == "offline"
    assert gauge.most == {job: 1 for job in JOBS}
    assert slowest < QUICK_PAGE_S
