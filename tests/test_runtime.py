"""The runtime: the jobs run in one process per instance folder, whoever asks."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import panel_env
from tests.daemons import eventually
from tests.daemons import free_port
from webpanel.models import Client
from webpanel.models import db
from webpanel.runtime import LOCK_NAME
from webpanel.runtime import Runtime
from webpanel.runtime import start_runtime
from webpanel.services.clients import create_client
from xray.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
FAST_JOBS = {"POLL_SECONDS": "1", "RECOVER_SECONDS": "1"}
STARTED = re.compile(r"jobs started in pid (\d+)")
ELSEWHERE = "jobs run in another process"


def add_client(app: Flask, name: str) -> Client:
    with app.app_context(), db.connection_context():
        return create_client(name, actor="test")


def wait_until_held(simulator: Simulator, email: str, timeout: float = 10) -> None:
    """Wait until the simulator holds `email`: only a job can have put it back."""

    def held() -> None:
        assert email in simulator.users(), f"{email} is not back in the simulator"

    eventually(held, retry_on=AssertionError, timeout=timeout)


@pytest.fixture
def runtimes(
    make_app: Callable[..., Flask], simulator: Simulator
) -> Iterator[list[Runtime]]:
    """Runtimes a test started; stopped before the apps and simulator go."""
    started: list[Runtime] = []
    yield started
    for runtime in started:
        runtime.stop()


def test_it_runs_the_jobs_only_in_the_app_that_holds_the_lock(
    make_app: Callable[..., Flask],
    simulator: Simulator,
    runtimes: list[Runtime],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="webpanel.runtime")
    first = make_app(simulator.address, **FAST_JOBS)
    second = make_app(simulator.address, **FAST_JOBS)
    client = add_client(first, "Алиса")
    simulator.restart()

    runtime = start_runtime(first)
    assert runtime is not None
    runtimes.append(runtime)
    assert start_runtime(second) is None
    assert {job.id for job in runtime.scheduler.get_jobs()} == {
        "poll",
        "recover",
        "enforce",
        "history",
        "webhooks",
    }
    assert len(STARTED.findall(caplog.text)) == 1
    wait_until_held(simulator, client.email)

    # Once the first lets go, the next one to ask runs the jobs.
    runtime.stop()
    assert not runtime.scheduler.running
    successor = start_runtime(second)
    assert successor is not None
    runtimes.append(successor)
    assert successor.scheduler.running
    assert len(STARTED.findall(caplog.text)) == 2
    simulator.restart()
    wait_until_held(simulator, client.email)


class Gunicorn:
    """`gunicorn -c deploy/gunicorn.conf.py wsgi:app` run from the repo root."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str], workers: int) -> None:
        command = [sys.executable, "-m", "gunicorn", "-w", str(workers)]
        # No control socket: its default path in $HOME is shared by every run.
        command += ["--no-control-socket", "-c", "deploy/gunicorn.conf.py", "wsgi:app"]
        with (
            open(self.workdir / "gunicorn.out", "wb") as out,
            open(self.workdir / "gunicorn.err", "wb") as err,
        ):
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def stderr(self) -> str:
        return (self.workdir / "gunicorn.err").read_text(errors="replace")

    def wait_for_http(self, url: str, timeout: float = 30) -> int:
        """The status of GET url once gunicorn answers; fail if it exits first."""
        # Loopback only: no proxy from the environment may come between.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited early:\n{self.stderr()}")
            try:
                with opener.open(url, timeout=2) as response:
                    return response.status
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"gunicorn did not answer {url} in {timeout} s:\n{self.stderr()}")

    def stop(self) -> None:
        """SIGTERM to the arbiter's PID; SIGKILL if it has not gone in 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path)
    yield server
    server.stop()


def test_it_runs_the_jobs_in_exactly_one_of_four_gunicorn_workers(
    make_app: Callable[..., Flask],
    simulator: Simulator,
    gunicorn: Gunicorn,
    tmp_path: Path,
) -> None:
    instance = tmp_path / "instance"
    settings = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **FAST_JOBS}

    # The database exists before the workers start, with one client in it
    # that the daemon has since forgotten: only the jobs can bring it back.
    client = add_client(make_app(simulator.address, **settings), "Алиса")
    simulator.restart()

    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        **panel_env(simulator.address, **settings),
        "PANEL_HOST": "127.0.0.1",
        "PANEL_PORT": str(port),
        "INFINITY_INSTANCE": str(instance),
    }
    gunicorn.start(env, workers=4)
    assert gunicorn.wait_for_http(f"http://127.0.0.1:{port}/login") == 200

    def all_workers_decided() -> None:
        log = gunicorn.stderr()
        decided = len(STARTED.findall(log)) + log.count(ELSEWHERE)
        assert decided == 4, f"{decided} of 4 workers decided:\n{log}"

    eventually(all_workers_decided, retry_on=AssertionError, timeout=20)
    wait_until_held(simulator, client.email)
    log = gunicorn.stderr()
    workers = re.findall(r"Booting worker with pid: (\d+)", log)
    assert len(workers) == 4
    (runner,) = STARTED.findall(log)
    assert runner in workers
    assert (instance / LOCK_NAME).read_text().strip() == runner

    # The access log names the subscription it served, but not its token.
    url = f"http://127.0.0.1:{port}/sub/{client.sub_token}"
    assert gunicorn.wait_for_http(url) == 200

    def logged() -> str:
        access = (tmp_path / "gunicorn.out").read_text() + gunicorn.stderr()
        assert f"/sub/{client.sub_token[:4]}…" in access
        return access

    assert client.sub_token not in eventually(logged, retry_on=AssertionError)
