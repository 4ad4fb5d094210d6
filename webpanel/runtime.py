"""What runs beside the pages: the scheduler (and, later, plugins), once per host."""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import IO

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from plugins import load_plugins
from plugins import stop_plugins
from webpanel.jobs import enforce_job
from webpanel.jobs import history_job
from webpanel.jobs import poll_job
from webpanel.jobs import recover_job
from webpanel.jobs import webhook_job

log = logging.getLogger(__name__)

LOCK_NAME = "runtime.lock"
WEBHOOK_SECONDS = 5  # a delivery queued by another worker waits at most this


class Runtime:
    """The jobs this process runs, and the lock that makes it the only one."""

    def __init__(
        self, app: Flask, scheduler: BackgroundScheduler, lock: IO[str]
    ) -> None:
        self.app = app
        self.scheduler = scheduler
        self.lock = lock
        self._woken: dict[str, threading.Event] = {}
        self._busy: set[str] = set()
        self._wake_lock = threading.Lock()

    def wake(self, job_id: str) -> None:
        """Run a job now instead of at its next tick.

        A job woken while it runs goes round once more (see `woken`); asking
        the scheduler then would only be refused, with a warning.
        """
        with self._wake_lock:
            self._woken.setdefault(job_id, threading.Event()).set()
            if job_id in self._busy or not self.scheduler.running:
                return
        self.scheduler.modify_job(job_id, next_run_time=datetime.now(UTC))

    @contextmanager
    def running(self, job_id: str) -> Iterator[threading.Event]:
        """Mark a job as running; the event tells whether it was woken since."""
        with self._wake_lock:
            self._busy.add(job_id)
            woken = self._woken.setdefault(job_id, threading.Event())
        try:
            yield woken
        finally:
            with self._wake_lock:
                self._busy.discard(job_id)
                again = woken.is_set()  # woken as the job was finishing
            if again and self.scheduler.running:
                self.scheduler.modify_job(job_id, next_run_time=datetime.now(UTC))

    def stop(self) -> None:
        stop_plugins(self.app)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.lock.close()  # closing the file releases the lock
        self.app.extensions.pop("infinity.runtime", None)


def take_lock(instance: Path) -> IO[str] | None:
    """An exclusive lock on instance/runtime.lock, or None if another process has it."""
    instance.mkdir(parents=True, exist_ok=True)
    handle = open(instance / LOCK_NAME, "a+")  # noqa: SIM115 - held for the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def start_runtime(app: Flask) -> Runtime | None:
    """Start the jobs here unless another process on this host already runs them."""
    existing = app.extensions.get("infinity.runtime")
    if existing is not None:
        return existing
    lock = take_lock(Path(app.instance_path))
    if lock is None:
        log.info("jobs run in another process (pid %d serves pages only)", os.getpid())
        return None

    settings = app.extensions["infinity.settings"]
    scheduler = BackgroundScheduler(
        # One thread per job at most (max_instances=1): a few threads, not ten.
        executors={"default": ThreadPoolExecutor(6)},
        timezone=UTC,
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
    )
    now = datetime.now(UTC)
    jobs = [
        # (function, id, name, seconds, also at start)
        (recover_job, "recover", "restart recovery", settings.recover_seconds, True),
        (poll_job, "poll", "traffic polling", settings.poll_seconds, False),
        (enforce_job, "enforce", "limits and expiry", settings.enforce_seconds, False),
        (history_job, "history", "usage roll-up and pruning", 300, True),
        (webhook_job, "webhooks", "webhook deliveries", WEBHOOK_SECONDS, True),
    ]
    for func, job_id, name, seconds, at_start in jobs:
        first = {"next_run_time": now} if at_start else {}
        scheduler.add_job(
            func, "interval", seconds=seconds, args=[app], id=job_id, name=name, **first
        )
    scheduler.start()
    load_plugins(app, settings.plugins, scheduler)
    runtime = Runtime(app, scheduler, lock)
    app.extensions["infinity.runtime"] = runtime
    atexit.register(runtime.stop)
    log.info(
        "jobs started in pid %d: poll every %d s, recovery every %d s, "
        "limits and expiry every %d s",
        os.getpid(),
        settings.poll_seconds,
        settings.recover_seconds,
        settings.enforce_seconds,
    )
    return runtime
