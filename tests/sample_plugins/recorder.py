"""A plugin for tests: records client changes and runs a thread and a job."""

from __future__ import annotations

import threading

from plugins import PluginContext

SETTINGS_PREFIX = "RECORDER_"

seen: list[tuple[str, str]] = []


class Recorder:
    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.stopped = threading.Event()
        context.signals.client_changed.connect(self.on_change, weak=False)

    def on_change(self, client, **kwargs) -> None:
        seen.append((client.name, kwargs["event"]))

    def start(self) -> None:
        if self.context.settings.get("RECORDER_CRASH") == "1":
            self.context.start_thread(self.crash)
        self.context.start_thread(self.stopped.wait)

    def crash(self) -> None:
        raise RuntimeError("the recorder fell over")

    def stop(self) -> None:
        self.context.signals.client_changed.disconnect(self.on_change)
        self.stopped.set()


def create(context: PluginContext) -> Recorder:
    return Recorder(context)
