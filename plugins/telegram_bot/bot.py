"""The bot as a plugin: a thread for updates, one for notices, a periodic check.

Updates come by long polling (getUpdates), or, with TELEGRAM_WEBHOOK_URL,
through the panel's webhook route (webhook.py), which hands them to `feed`.
"""

from __future__ import annotations

import hmac
import logging
import queue
import threading
import time
from collections.abc import Callable

from apscheduler.jobstores.base import JobLookupError
from telebot import types

from plugins import PluginContext
from plugins.telegram_bot import config as bot_config
from plugins.telegram_bot.masking import guard_loggers
from plugins.telegram_bot.masking import unguard_loggers
from plugins.telegram_bot.models import create_tables
from plugins.telegram_bot.notices import OUTBOX_BATCH
from plugins.telegram_bot.notices import Notices
from plugins.telegram_bot.router import Router
from plugins.telegram_bot.transport import Api
from plugins.telegram_bot.transport import Backoff
from plugins.telegram_bot.transport import Conflict
from plugins.telegram_bot.transport import RateLimited
from plugins.telegram_bot.transport import TelegramError
from plugins.telegram_bot.transport import Unauthorized
from plugins.telegram_bot.transport import install
from plugins.telegram_bot.transport import uninstall
from plugins.telegram_bot.turn import panel_from
from webpanel.settings import mask

log = logging.getLogger(__name__)

PACKAGE = "plugins.telegram_bot"
MODULES = (
    "admin",
    "bot",
    "client",
    "dialogs",
    "notices",
    "router",
    "transport",
    "webhook",
)
# Every logger that may see the token: ours, the plugin's own, the library's.
LOGGERS = [PACKAGE, *(f"{PACKAGE}.{m}" for m in MODULES), "telebot"]
JOB_ID = "telegram-warnings"
OUTBOX_IDLE = 2.0  # seconds between looks at the outbox when nothing wakes it


class TelegramBot:
    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.config = bot_config.load_config(context.settings)
        self.tuning = bot_config.DEFAULT_TUNING
        self.username = ""  # from getMe; the panel builds t.me invite links with it
        self.stopped = threading.Event()
        self.outbox_ready = threading.Event()
        self.webhook_updates: queue.Queue[types.Update] = queue.Queue()
        self.api = Api(self.config, self.tuning, self.stopped)
        self.panel = panel_from(context, self.config.admin_ids, lambda: self.username)
        self.router = Router(self.api, self.panel)
        self.notices = Notices(
            context.signals, self.config.admin_ids, self.outbox_ready.set
        )
        self._threads: list[threading.Thread] = []
        self._filter = None
        self._lock = threading.Lock()
        self._live = 0  # threads still running
        self._released = False
        with context.app_context():
            create_tables()

    # Plugin interface

    def start(self) -> None:
        self._filter = guard_loggers(self.api.redact, LOGGERS)
        install(self.config, self.tuning)
        self.notices.connect()
        self._schedule()
        receive = self._serve_webhook if self.config.webhook else self._poll
        self._live = 2
        self._threads = [
            self.context.start_thread(self._counted(receive), "telegram-updates"),
            self.context.start_thread(
                self._counted(self._send_outbox), "telegram-outbox"
            ),
        ]
        log.info(
            "telegram bot starting: %s at %s%s, token %s, %d admin(s)",
            "webhook" if self.config.webhook else "long polling",
            self.config.api_url,
            " through a proxy" if self.config.proxy else "",
            mask(self.config.token),
            len(self.config.admin_ids),
        )

    def stop(self) -> None:
        """End the threads; a long poll in flight is waited for a few seconds."""
        self.stopped.set()
        self.outbox_ready.set()
        self.notices.disconnect()
        self._unschedule()
        deadline = time.monotonic() + self.tuning.stop_wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        busy = [thread.name for thread in self._threads if thread.is_alive()]
        if busy:
            # A request still in flight ends by itself; the last thread out
            # then puts the library's settings and our log filter back.
            log.info("telegram: %s ends after its request", ", ".join(busy))
        else:
            self._release()
        log.info("telegram bot stopped")

    def _counted(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            finally:
                with self._lock:
                    self._live -= 1
                    last = self._live == 0
                if last and self.stopped.is_set():
                    self._release()

        return run

    def _release(self) -> None:
        """Undo start's process-wide changes, once."""
        with self._lock:
            if self._released:
                return
            self._released = True
        uninstall()
        if self._filter is not None:
            unguard_loggers(self._filter, LOGGERS)

    # Webhook mode: the panel's route calls these

    def accepts(self, secret: str | None) -> bool:
        """Whether a request carries our X-Telegram-Bot-Api-Secret-Token."""
        expected = self.config.webhook_secret
        if not self.config.webhook or not secret or not expected:
            return False
        return hmac.compare_digest(secret.encode(), expected.encode())

    def feed(self, payload: dict) -> None:
        """Queue an update that came to the webhook."""
        self.webhook_updates.put(types.Update.de_json(payload))

    # Threads

    def _hello(self) -> bool:
        """getMe until it answers: learn our @username. False if we must stop."""
        backoff = Backoff(self.tuning.backoff_first, self.tuning.backoff_cap)
        while not self.stopped.is_set():
            try:
                me = self.api.get_me()
            except Unauthorized as error:
                self._give_up("Telegram refused TELEGRAM_BOT_TOKEN", error)
                return False
            except TelegramError as error:
                self._pause(f"getMe failed ({error})", backoff.next())
                continue
            self.username = me.username or ""
            log.info("telegram bot @%s is up", self.username)
            return True
        return False

    def _poll(self) -> None:
        if not self._hello():
            return
        try:
            self.api.delete_webhook()  # a webhook left set makes getUpdates a 409
        except TelegramError as error:
            log.warning("telegram: deleteWebhook failed: %s", error)

        offset = None
        backoff = Backoff(self.tuning.backoff_first, self.tuning.backoff_cap)
        while not self.stopped.is_set():
            try:
                updates = self.api.get_updates(offset)
            except Conflict as error:
                self._give_up(
                    "another process polls with this token, or a webhook is set; "
                    "stop the other one, then restart the panel",
                    error,
                )
                return
            except Unauthorized as error:
                self._give_up("Telegram refused TELEGRAM_BOT_TOKEN", error)
                return
            except RateLimited as error:
                self._pause(str(error), error.retry_after)
                continue
            except TelegramError as error:
                self._pause(f"getUpdates failed ({error})", backoff.next())
                continue
            backoff.reset()
            if updates and not self.stopped.is_set():
                # Confirmed with the next getUpdates; unanswered ones come again.
                offset = updates[-1].update_id + 1
                self._handle(updates)

    def _serve_webhook(self) -> None:
        if not self._hello():
            return
        backoff = Backoff(self.tuning.backoff_first, self.tuning.backoff_cap)
        while not self.stopped.is_set():
            try:
                self.api.set_webhook(
                    self.config.webhook_url, self.config.webhook_secret
                )
                log.info("telegram webhook set to %s", self.config.webhook_url)
                break
            except TelegramError as error:
                self._pause(f"setWebhook failed ({error})", backoff.next())
        while not self.stopped.is_set():
            try:
                update = self.webhook_updates.get(timeout=0.2)
            except queue.Empty:
                continue
            self._handle([update])

    def _handle(self, updates: list[types.Update]) -> None:
        try:
            with self.context.app_context():
                for update in updates:
                    self.router.handle(update)
        except Exception:
            log.exception("telegram: updates could not be handled")

    def _send_outbox(self) -> None:
        backoff = Backoff(self.tuning.backoff_first, self.tuning.backoff_cap)
        while not self.stopped.is_set():
            self.outbox_ready.wait(OUTBOX_IDLE)
            self.outbox_ready.clear()
            if self.stopped.is_set():
                break
            try:
                with self.context.app_context():
                    done = self.notices.flush(self.api)
            except TelegramError as error:
                self.outbox_ready.set()  # try again after the pause
                self._pause(f"notices not sent ({error})", backoff.next())
                continue
            except Exception:
                log.exception("telegram: the outbox failed")
                self.outbox_ready.set()
                self.stopped.wait(backoff.next())
                continue
            backoff.reset()
            if done >= OUTBOX_BATCH:
                self.outbox_ready.set()

    def _check_notices(self) -> None:
        try:
            with self.context.app_context():
                self.notices.check()
        except Exception:
            log.exception("telegram: the warnings check failed")

    # Helpers

    def _pause(self, why: str, seconds: float) -> None:
        if self.stopped.is_set():
            return  # the failure was the stop itself
        log.warning("telegram: %s; trying again in %g s", why, seconds)
        self.stopped.wait(seconds)

    def _give_up(self, why: str, error: TelegramError) -> None:
        log.error("telegram: %s (%s). The bot is stopped.", why, error)
        self.context.state.fail(error)

    def _schedule(self) -> None:
        scheduler = self.context.scheduler
        if scheduler is None:
            log.info("telegram: no scheduler here, so no 80 %% or expiry warnings")
            return
        scheduler.add_job(
            self._check_notices,
            "interval",
            seconds=self.tuning.notice_seconds,
            id=JOB_ID,
            name="telegram warnings",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )

    def _unschedule(self) -> None:
        scheduler = self.context.scheduler
        if scheduler is None:
            return
        try:
            scheduler.remove_job(JOB_ID)
        except JobLookupError:
            pass


def running_bot(plugins: list, name: str = "telegram_bot") -> TelegramBot | None:
    """The running bot among the app's plugin states, if this process runs it."""
    for state in plugins:
        if state.name == name and isinstance(state.plugin, TelegramBot):
            return state.plugin if state.status == "running" else None
    return None
