"""Plugins: packages under plugins/ loaded by name from the PLUGINS setting.

A plugin is a package `plugins/<name>/` whose `__init__.py` defines

    def create(context: PluginContext) -> Plugin

and may set `SETTINGS_PREFIX` (default: the name in capitals plus `_`). The
returned object has `start()` and `stop()`; `start()` must return quickly
and do long work in `context.start_thread(...)`. See plugins/README.md.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from types import SimpleNamespace
from typing import Protocol

from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

log = logging.getLogger(__name__)


class Plugin(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class PluginContext:
    """What a plugin gets from the panel: nothing else of the app is its business."""

    name: str
    app: Flask
    settings: Mapping[str, str]  # its own, from the environment, prefix kept
    services: SimpleNamespace
    signals: SimpleNamespace
    scheduler: BaseScheduler | None
    log: logging.Logger
    state: PluginState

    @contextmanager
    def app_context(self) -> Iterator[None]:
        """An app context and a database connection, for threads and jobs."""
        from webpanel.models import db

        with self.app.app_context(), db.connection_context():
            yield

    def start_thread(
        self, target: Callable[[], None], name: str = ""
    ) -> threading.Thread:
        """Run target in a daemon thread; a crash is logged and shown, not raised."""
        state = self.state

        def run() -> None:
            try:
                target()
            except Exception as error:
                state.fail(error)
                self.log.exception("plugin %s crashed", self.name)

        thread = threading.Thread(
            target=run, name=name or f"plugin-{self.name}", daemon=True
        )
        thread.start()
        return thread


@dataclass
class PluginState:
    """What the status page shows of a plugin."""

    name: str
    status: str = "loading"  # loading, running, failed, stopped
    error: str = ""
    settings: dict[str, str] = field(default_factory=dict)  # masked
    plugin: Plugin | None = None

    def fail(self, error: BaseException) -> None:
        self.status = "failed"
        self.error = f"{type(error).__name__}: {error}"


def _services() -> SimpleNamespace:
    from webpanel.services import accounting
    from webpanel.services import audit
    from webpanel.services import backup
    from webpanel.services import clients
    from webpanel.services import history
    from webpanel.services import invites
    from webpanel.services import links
    from webpanel.services import nodes
    from webpanel.services import stats
    from webpanel.services import sync

    return SimpleNamespace(
        clients=clients,
        nodes=nodes,
        accounting=accounting,
        history=history,
        links=links,
        audit=audit,
        sync=sync,
        stats=stats,
        invites=invites,
        backup=backup,
    )


def _signals() -> SimpleNamespace:
    from webpanel import signals

    return SimpleNamespace(
        client_changed=signals.client_changed, node_changed=signals.node_changed
    )


def own_settings(env: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(prefix)}


def load_plugins(
    app: Flask, names: tuple[str, ...], scheduler: BaseScheduler | None
) -> list[PluginState]:
    """Create and start each named plugin; a failure is logged, never raised."""
    from webpanel.settings import mask_settings

    env = app.extensions.get("infinity.env", {})
    states = []
    for name in names:
        state = PluginState(name)
        states.append(state)
        try:
            # A bare name is one of ours; a dotted one any importable package.
            module = importlib.import_module(name if "." in name else f"plugins.{name}")
            short = name.rsplit(".", 1)[-1]
            prefix = getattr(module, "SETTINGS_PREFIX", f"{short.upper()}_")
            settings = own_settings(env, prefix)
            state.settings = mask_settings(settings)
            context = PluginContext(
                name=name,
                app=app,
                settings=settings,
                services=_services(),
                signals=_signals(),
                scheduler=scheduler,
                log=logging.getLogger(f"plugins.{name}"),
                state=state,
            )
            state.plugin = module.create(context)
            state.plugin.start()
        except Exception as error:
            state.fail(error)
            log.exception("plugin %s failed to load", name)
            continue
        if state.status == "loading":
            state.status = "running"
        log.info("plugin %s started", name)
    app.extensions["infinity.plugins"] = states
    return states


def stop_plugins(app: Flask) -> None:
    for state in app.extensions.get("infinity.plugins", []):
        if state.plugin is None or state.status == "stopped":
            continue
        try:
            state.plugin.stop()
            state.status = "stopped"
        except Exception as error:
            state.fail(error)
            log.exception("plugin %s failed to stop", state.name)
