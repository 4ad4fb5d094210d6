"""Memory of the panel as it really runs: gunicorn, 10,000 clients, busy jobs.

The panel runs under `gunicorn -c deploy/gunicorn.conf.py wsgi:app` with the
simulator (in this process) as its node and its jobs every 1 s (poll) and
2 s (recovery). For ~20 s every client gets traffic every 2 s and the
sign-in page is fetched; then we read VmRSS of the worker that runs the
jobs (and of the master) from /proc. The baseline is a bare Python that
imports flask, grpc and peewee. Afterwards, for information only, we sign
in and load the client list (all 10,000 rows) and read the worker again.

    .venv/bin/python bench/rss.py
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import closing
from pathlib import Path

import common

from tests.daemons import free_port
from tests.daemons import wait_for_port
from webpanel.auth import create_admin
from xray.simulator import Simulator

CLIENTS = 10_000
ROUNDS = 10  # of ROUND_S each: traffic for everyone, a page, an RSS sample
ROUND_S = 2.0
LIST_LOADS = 3
INHERITED = ("PATH", "HOME", "LANG")  # from our environment; nothing else
ADMIN = "bench"
PASSWORD = "bench password, not a secret"
START_TIMEOUT = 30.0
GUNICORN_ARGS = ("-c", "deploy/gunicorn.conf.py", "wsgi:app")  # as `make run`

BARE = (
    "import flask, grpc, peewee, re; "
    "print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])"
)


def main() -> None:
    with common.workspace("rss") as folder:
        simulator = Simulator().start()
        try:
            figures = measure(simulator, folder)
        finally:
            simulator.stop()
    common.report(figures)


def measure(simulator: Simulator, folder: Path) -> dict[str, float]:
    emails = prepare(simulator, folder)
    port = free_port()
    log_path = folder / "gunicorn.log"
    with open(log_path, "wb") as log:
        master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *GUNICORN_ARGS],
            cwd=common.ROOT,
            env=panel_env(simulator, folder, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        return run(master, simulator, folder, port, emails)
    except Exception:
        common.say(f"--- gunicorn log (last lines)\n{tail(log_path)}")
        raise
    finally:
        stop(master)


def prepare(simulator: Simulator, folder: Path) -> list[str]:
    """The database the panel will open: 10,000 clients and one admin."""
    with common.panel(simulator.address, folder):
        rows = common.make_clients(CLIENTS, flow="xtls-rprx-vision")
        create_admin(ADMIN, PASSWORD)
    return [row["email"] for row in rows]


def panel_env(simulator: Simulator, folder: Path, port: int) -> dict[str, str]:
    """Only what the panel needs: nothing from a developer's shell or .env."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.update(
        common.panel_env(
            simulator.address,
            INFINITY_INSTANCE=str(folder / "instance"),
            DATABASE_URL="",
            PANEL_HOST="127.0.0.1",
            PANEL_PORT=str(port),
            POLL_SECONDS="1",
            RECOVER_SECONDS="2",
            PLUGINS="",
            GUNICORN_WORKERS="1",
        )
    )
    return env


def run(
    master: subprocess.Popen,
    simulator: Simulator,
    folder: Path,
    port: int,
    emails: list[str],
) -> dict[str, float]:
    common.check(wait_for_port(port, START_TIMEOUT), "the panel did not start")
    worker = jobs_pid(master, folder)
    base = f"http://127.0.0.1:{port}"
    # No proxy from the environment: the panel is on loopback, and only there.
    pages = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
    )

    restore = wait_for_restore(simulator)
    common.say(
        f"start-up recovery: all {CLIENTS} users in the node {restore:.1f} s later"
    )
    peak = 0.0
    for round_ in range(ROUNDS):
        for email in emails:
            simulator.push_traffic(email, uplink=1000, downlink=round_ + 1)
        with pages.open(f"{base}/login", timeout=10) as page:
            common.check(page.status == 200, f"GET /login answered {page.status}")
        peak = max(peak, vm(worker, "VmRSS"))
        time.sleep(ROUND_S)

    check_polls_counted(folder)
    rss = vm(worker, "VmRSS")
    figures = {
        "rss_mb": round(rss, 1),
        "rss_peak_mb": round(max(peak, rss), 1),
        "rss_master_mb": round(vm(master.pid, "VmRSS"), 1),
        "rss_bare_mb": round(bare_python(), 1),
    }

    sign_in(pages, base)
    for _ in range(LIST_LOADS):
        with pages.open(f"{base}/clients", timeout=60) as page:
            body = page.read()
        rows = body.count(b"data-client=")
        common.check(rows == 50, f"the client list shows {rows} rows, not a page of 50")
        common.check(f"{CLIENTS} clients".encode() in body, "no count of all clients")
    figures["rss_after_list_mb"] = round(vm(worker, "VmRSS"), 1)
    return figures


def jobs_pid(master: subprocess.Popen, folder: Path) -> int:
    """The worker that holds the jobs lock: its pid is in instance/runtime.lock."""
    lock = folder / "instance" / "runtime.lock"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = lock.read_text().strip() if lock.exists() else ""
        if text.isdigit() and int(text) in children(master.pid):
            return int(text)
        common.check(master.poll() is None, "gunicorn exited")
        time.sleep(0.1)
    raise common.BenchError("no gunicorn worker took the jobs lock")


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        return set()
    return {int(child) for child in path.read_text().split()}


def vm(pid: int, field: str) -> float:
    """A Vm… line of /proc/PID/status, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    common.check(found is not None, f"no {field} for pid {pid}")
    return int(found[1]) / 1024


def bare_python() -> float:
    """VmRSS of a Python that only imports flask, grpc and peewee, in MiB."""
    output = subprocess.run(
        [sys.executable, "-c", BARE], capture_output=True, text=True, check=True
    ).stdout
    return int(output) / 1024


def wait_for_restore(simulator: Simulator) -> float:
    """Seconds from the panel answering until start-up recovery added everyone."""
    started = time.monotonic()
    while len(simulator.users()) < CLIENTS:
        common.check(time.monotonic() - started < START_TIMEOUT, "no restore")
        time.sleep(0.1)
    return time.monotonic() - started


def check_polls_counted(folder: Path) -> None:
    """Every client's traffic reached the database: the poll job ran."""
    path = folder / "instance" / "infinity.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
        query = "SELECT COUNT(*) FROM client WHERE uplink > 0"
        (counted,) = database.execute(query).fetchone()
    common.check(counted == CLIENTS, f"polls counted traffic of {counted} clients")
    common.say(f"checked: the polls counted traffic of all {counted} clients")


def sign_in(pages: urllib.request.OpenerDirector, base: str) -> None:
    with pages.open(f"{base}/login", timeout=10) as page:
        html = page.read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    common.check(token is not None, "no CSRF token on /login")
    form = {"username": ADMIN, "password": PASSWORD, "csrf_token": token[1]}
    data = urllib.parse.urlencode(form).encode()
    with pages.open(f"{base}/login", data=data, timeout=10) as page:
        common.check(page.url.endswith("/clients"), f"sign-in ended at {page.url}")


def stop(master: subprocess.Popen) -> None:
    """SIGTERM the gunicorn master we started (it stops its worker); then kill."""
    if master.poll() is None:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait(timeout=10)


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    main()
