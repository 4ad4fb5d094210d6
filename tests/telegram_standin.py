"""A stand-in for the Telegram Bot API on 127.0.0.1, for the bot's tests.

It answers the way pyTelegramBotAPI calls: `GET|POST /bot<token>/<method>`
with every parameter in the query string (files as multipart in the body),
and replies `{"ok": true, "result": …}` or `{"ok": false, "error_code": …,
"description": …, "parameters": …}`. It records every call, hands queued
updates to getUpdates, keeps the messages it "sent" so that edits and button
presses work, and checks what Telegram checks: HTML entities, 4096 UTF-16
units per message, 64 bytes of callback data, "message is not modified".

On demand it fails: an error reply (429 with retry_after, 409, 5xx …), a
late answer (the client times out), or a connection closed without a reply.
Requests sent to it as an HTTP proxy (absolute-form targets) are answered as
if it were the API, and marked, so a proxy setting can be tested offline.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from typing import Self
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from flask import Flask

from plugins.telegram_bot import config as bot_config
from plugins.telegram_bot.config import Tuning
from webpanel.models import Node
from webpanel.models import db
from webpanel.runtime import start_runtime

BOT_USER = {
    "id": 424242,
    "is_bot": True,
    "first_name": "Infinity Test",
    "username": "infinity_test_bot",
}
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre",
    "a", "tg-spoiler", "span", "blockquote", "tg-emoji",
}  # fmt: skip
ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
TAG = re.compile(r"<(/?)([a-z-]+)((?:\s[^<>]*)?)>")
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64


class BadRequest(Exception):
    """An answer of 400 with Telegram's wording."""


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> str:
    """The text Telegram would show for HTML parse mode, or BadRequest."""
    plain: list[str] = []
    open_tags: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char == "<":
            tag = TAG.match(text, at)
            if not tag or tag.group(2) not in ALLOWED_TAGS:
                raise BadRequest(
                    "Bad Request: can't parse entities: unsupported start tag "
                    f"at byte offset {at}"
                )
            closing, name = tag.group(1), tag.group(2)
            if closing:
                if not open_tags or open_tags.pop() != name:
                    raise BadRequest(
                        f"Bad Request: can't parse entities: unexpected end tag {name}"
                    )
            else:
                open_tags.append(name)
            at = tag.end()
        elif char == "&":
            entity = ENTITY.match(text, at)
            if not entity:
                raise BadRequest(
                    "Bad Request: can't parse entities: character entity expected "
                    f"at byte offset {at}"
                )
            plain.append(html.unescape(entity.group(0)))
            at = entity.end()
        elif char == ">":
            raise BadRequest("Bad Request: can't parse entities: unexpected '>'")
        else:
            plain.append(char)
            at += 1
    if open_tags:
        raise BadRequest(
            f"Bad Request: can't parse entities: unclosed tag {open_tags[-1]}"
        )
    return "".join(plain)


@dataclass
class Call:
    """One request the bot made."""

    method: str
    params: dict[str, str]
    files: dict[str, tuple[str, bytes]]
    token: str
    at: float
    via_proxy: bool = False
    answer: dict | None = None

    @property
    def ok(self) -> bool:
        return bool(self.answer and self.answer.get("ok"))


@dataclass
class Sent:
    """A message the bot sent, as it stands now (after edits)."""

    chat_id: int
    message_id: int
    kind: str  # text, photo, document
    text: str  # the text or caption as sent, HTML included
    parse_mode: str
    markup: dict | None
    file_name: str = ""
    file: bytes = b""
    edits: int = 0

    @property
    def plain(self) -> str:
        return parse_html(self.text) if self.parse_mode == "HTML" else self.text

    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback data) of every inline button, row by row."""
        rows = (self.markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    def button(self, label_part: str) -> str:
        """The callback data of the first button whose label contains label_part."""
        for label, data in self.buttons():
            if label_part.lower() in label.lower():
                return data
        raise AssertionError(f"no button like {label_part!r} in {self.buttons()}")


@dataclass
class Fault:
    method: str
    kind: str  # error, delay, drop
    code: int = 0
    description: str = ""
    retry_after: int | None = None
    seconds: float = 0.0


@dataclass
class Event:
    """One line of the conversation, for transcripts."""

    kind: str  # in, press, out, edit, photo, document, answer
    chat_id: int
    text: str
    extra: str = ""


@dataclass
class _Pending:
    update: dict
    update_id: int


class TelegramStandIn:
    """Start with `with TelegramStandIn(token) as api:`; point the bot at api.url."""

    def __init__(self, token: str, *, hold: float = 0.2) -> None:
        self.token = token
        self.hold = hold  # longest a getUpdates waits, whatever timeout it asks
        self.calls: list[Call] = []
        self.events: list[Event] = []
        self.messages: dict[tuple[int, int], Sent] = {}
        self.answers: list[dict[str, str]] = []
        self.webhook: dict[str, str] = {}
        self.blocked: set[int] = set()
        self._faults: list[Fault] = []
        self._updates: list[_Pending] = []
        self._confirmed = 0  # updates below this id were fetched and confirmed
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    @property
    def url(self) -> str:
        assert self._server is not None, "the stand-in is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> TelegramStandIn:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.standin = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="telegram-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        with self._changed:
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # What the test sends

    def push_message(self, user_id: int, text: str, **details: Any) -> int:
        """Queue a text message from a user for getUpdates; returns its update id."""
        update = self.message_update(user_id, text, **details)
        with self._changed:
            self._updates.append(_Pending(update, update["update_id"]))
            self._changed.notify_all()
        return update["update_id"]

    def message_update(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str = "en",
        first_name: str = "Tester",
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> dict:
        """An update with a text message, as Telegram sends it (also to webhooks)."""
        chat_id = user_id if chat_id is None else chat_id
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, "first_name": first_name},
            "from": _user(user_id, first_name, language_code),
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": length}
            ]
        language = "" if language_code == "en" else language_code
        self.events.append(Event("in", chat_id, text, language))
        return {"update_id": next(self._update_ids), "message": message}

    def press(
        self,
        user_id: int,
        message: Sent,
        data: str,
        *,
        language_code: str = "en",
    ) -> int:
        """Queue a press on an inline button of a message; returns its update id."""
        labels = [label for label, d in message.buttons() if d == data]
        self.events.append(
            Event("press", message.chat_id, labels[0] if labels else data, data)
        )
        query = {
            "id": str(next(self._callback_ids)),
            "from": _user(user_id, "Tester", language_code),
            "chat_instance": "1",
            "data": data,
            "message": self._message_json(message),
        }
        return self._queue({"callback_query": query})

    def _queue(self, body: dict) -> int:
        update_id = next(self._update_ids)
        with self._changed:
            self._updates.append(_Pending({"update_id": update_id, **body}, update_id))
            self._changed.notify_all()
        return update_id

    # Faults

    def fail(
        self,
        method: str,
        code: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of method with an error reply."""
        fault = Fault(method, "error", code, description, retry_after)
        self._faults.extend([fault] * times)

    def delay(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next calls of method only after `seconds`."""
        self._faults.extend([Fault(method, "delay", seconds=seconds)] * times)

    def drop(self, method: str, *, times: int = 1) -> None:
        """Close the connection of the next calls of method without a reply."""
        self._faults.extend([Fault(method, "drop")] * times)

    def faults_left(self) -> int:
        """How many faults are still waiting for a call to hit them."""
        with self._changed:
            return len(self._faults)

    def _take_fault(self, method: str) -> Fault | None:
        with self._changed:
            for index, fault in enumerate(self._faults):
                if fault.method == method:
                    return self._faults.pop(index)
        return None

    # What the test reads

    def wait_handled(self, update_id: int, timeout: float = 5.0) -> None:
        """Wait until the bot confirmed the update: it asked for the ones after it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._confirmed <= update_id:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"update {update_id} was not handled")
                self._changed.wait(left)

    def wait_for(
        self, check: Callable[[], Any], timeout: float = 5.0, what: str = ""
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what or check}")

    def sent(self, chat_id: int | None = None, kind: str | None = None) -> list[Sent]:
        """Messages sent so far, oldest first (edits applied)."""
        found = sorted(self.messages.values(), key=lambda m: m.message_id)
        return [
            m
            for m in found
            if (chat_id is None or m.chat_id == chat_id)
            and (kind is None or m.kind == kind)
        ]

    def last(self, chat_id: int) -> Sent:
        texts = self.sent(chat_id, "text")
        assert texts, f"nothing was sent to {chat_id}"
        return texts[-1]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in list(self.calls) if c.method == method]

    def transcript(self, names: dict[int, str]) -> str:
        """The conversation as Markdown: who said what, which button, the replies."""
        lines = []
        for event in self.events:
            who = names.get(event.chat_id, str(event.chat_id))
            if event.kind == "in":
                app = f" (app in {event.extra})" if event.extra else ""
                lines.append(f"**{who}{app}:** `{event.text}`\n")
            elif event.kind == "press":
                lines.append(
                    f"**{who}** presses **[{event.text}]** (`{event.extra}`)\n"
                )
            elif event.kind == "answer":
                if event.text:  # an empty answer only stops the spinner
                    lines.append(f"> *bot, as a toast:* {event.text}\n")
            else:
                label = {
                    "out": "bot",
                    "edit": "bot edits its message",
                    "photo": "bot sends a photo",
                    "document": "bot sends a file",
                }[event.kind]
                quoted = "\n".join(f"> {line}" for line in event.text.splitlines())
                lines.append(f"*{label} to {who}:*\n\n{quoted or '>'}")
                if event.extra:
                    lines.append(f">\n> {event.extra.strip()}")
                lines.append("")
        return "\n".join(lines)

    # The API

    def handle(self, request: _Handler) -> None:
        target = request.path
        via_proxy = target.startswith(("http://", "https://"))
        parts = urlsplit(target)
        params = {k: v[-1] for k, v in parse_qs(parts.query, True).items()}
        files: dict[str, tuple[str, bytes]] = {}
        self._read_body(request, params, files)

        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", parts.path)
        if not match:
            request.reply(404, _error(404, "Not Found"))
            return
        token, method = match.groups()
        call = Call(method, params, files, token, time.monotonic(), via_proxy)
        self.calls.append(call)
        if token != self.token:
            call.answer = _error(401, "Unauthorized")
            request.reply(401, call.answer)
            return

        fault = self._take_fault(method)
        if fault and fault.kind == "drop":
            request.close_connection = True
            return
        if fault and fault.kind == "delay":
            self._closing.wait(fault.seconds)
        if fault and fault.kind == "error":
            call.answer = _error(fault.code, fault.description, fault.retry_after)
            request.reply(fault.code, call.answer)
            return

        try:
            call.answer = {"ok": True, "result": self._answer(method, params, files)}
        except BadRequest as error:
            code = 403 if str(error).startswith("Forbidden") else 400
            call.answer = _error(code, str(error))
        request.reply(200 if call.ok else call.answer["error_code"], call.answer)

    def _read_body(
        self,
        request: _Handler,
        params: dict[str, str],
        files: dict[str, tuple[str, bytes]],
    ) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        kind = request.headers.get("Content-Type", "")
        if kind.startswith("multipart/form-data"):
            head = f"Content-Type: {kind}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + body)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True) or b""
                if filename is not None:
                    files[name] = (filename, payload)
                else:
                    params[name] = payload.decode()
        elif body:
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})

    def _answer(
        self, method: str, params: dict[str, str], files: dict[str, tuple[str, bytes]]
    ) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "sendMessage":
            return self._send(params, "text", params.get("text", ""), files)
        if method == "sendPhoto":
            return self._send(params, "photo", params.get("caption", ""), files)
        if method == "sendDocument":
            return self._send(params, "document", params.get("caption", ""), files)
        if method == "editMessageText":
            return self._edit(params, text=params.get("text", ""))
        if method == "editMessageReplyMarkup":
            return self._edit(params, text=None)
        if method == "answerCallbackQuery":
            self.answers.append(params)
            text = params.get("text", "")
            self.events.append(Event("answer", 0, text))
            return True
        if method == "setWebhook":
            self.webhook = params
            return True
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        if method in ("setMyCommands", "deleteMessage"):
            return True
        raise BadRequest(f"Not Found: method {method} is not in the stand-in")

    def _get_updates(self, params: dict[str, str]) -> list[dict]:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), self.hold)
        deadline = time.monotonic() + wait
        with self._changed:
            if offset:
                self._updates = [u for u in self._updates if u.update_id >= offset]
                self._confirmed = max(self._confirmed, offset)
                self._changed.notify_all()
            while not self._updates and not self._closing.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return [pending.update for pending in self._updates[:100]]

    def _send(
        self,
        params: dict[str, str],
        kind: str,
        text: str,
        files: dict[str, tuple[str, bytes]],
    ) -> dict:
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            raise BadRequest("Forbidden: bot was blocked by the user")
        parse_mode = params.get("parse_mode", "")
        markup = self._markup(params)
        self._check_text(text, parse_mode, MAX_TEXT if kind == "text" else MAX_CAPTION)
        if kind == "text" and not text.strip():
            raise BadRequest("Bad Request: message text is empty")
        file_name, content = files.get(kind, ("", b""))
        if kind != "text" and not content:
            raise BadRequest(f"Bad Request: there is no {kind} in the request")
        sent = Sent(
            chat_id,
            next(self._message_ids),
            kind,
            text,
            parse_mode,
            markup,
            file_name,
            content,
        )
        self.messages[(chat_id, sent.message_id)] = sent
        event = {"text": "out"}.get(kind, kind)
        extra = f"[{file_name}, {len(content)} bytes]" if content else ""
        self.events.append(Event(event, chat_id, sent.plain, extra + _keys(sent)))
        return self._message_json(sent)

    def _edit(self, params: dict[str, str], text: str | None) -> dict:
        key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
        sent = self.messages.get(key)
        if sent is None:
            raise BadRequest("Bad Request: message to edit not found")
        markup = self._markup(params)
        new_text = sent.text if text is None else text
        parse_mode = sent.parse_mode if text is None else params.get("parse_mode", "")
        self._check_text(new_text, parse_mode, MAX_TEXT)
        if new_text == sent.text and markup == sent.markup:
            raise BadRequest(
                "Bad Request: message is not modified: specified new message "
                "content and reply markup are exactly the same as a current "
                "content and reply markup of the message"
            )
        sent.text, sent.parse_mode, sent.markup = new_text, parse_mode, markup
        sent.edits += 1
        self.events.append(Event("edit", sent.chat_id, sent.plain, _keys(sent)))
        return self._message_json(sent)

    def _markup(self, params: dict[str, str]) -> dict | None:
        if not params.get("reply_markup"):
            return None
        markup = json.loads(params["reply_markup"])
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data", "")
                if len(data.encode()) > MAX_CALLBACK_DATA:
                    raise BadRequest("Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _check_text(self, text: str, parse_mode: str, limit: int) -> None:
        plain = parse_html(text) if parse_mode == "HTML" else text
        if utf16_units(plain) > limit:
            what = "message" if limit == MAX_TEXT else "message caption"
            raise BadRequest(f"Bad Request: {what} is too long")

    def _message_json(self, sent: Sent) -> dict:
        message: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": sent.chat_id, "type": "private"},
            "from": BOT_USER,
        }
        if sent.kind == "text":
            message["text"] = sent.plain
        else:
            message["caption"] = sent.plain
        if sent.kind == "photo":
            message["photo"] = [
                {"file_id": "p1", "file_unique_id": "p1", "width": 1, "height": 1}
            ]
        if sent.kind == "document":
            message["document"] = {
                "file_id": "d1",
                "file_unique_id": "d1",
                "file_name": sent.file_name,
            }
        if sent.markup:
            message["reply_markup"] = sent.markup
        return message


def _user(user_id: int, first_name: str, language_code: str) -> dict:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": language_code,
    }


def _error(code: int, description: str, retry_after: int | None = None) -> dict:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


def _keys(sent: Sent) -> str:
    labels = [f"[{label}]" for label, _ in sent.buttons()]
    return (" buttons: " + " ".join(labels)) if labels else ""


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        self.server.standin.handle(self)  # type: ignore[attr-defined]

    do_POST = do_GET

    def reply(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a delay fault)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request line carries the token: keep it out of the output


# Fixtures: import the *_fixture names into a test module to use them there.

TOKEN = "123456:TEST-fake-token-not-real"
ADMIN = 1001
CLIENT = 2002
STRANGER = 3003
# Short waits for tests; the defaults suit Telegram.
FAST = Tuning(
    long_poll=1,
    request_timeout=2.0,
    backoff_first=0.05,
    backoff_cap=0.2,
    max_retry_after=5.0,
    notice_seconds=3600,
    stop_wait=5.0,
)


def bot_env(api: TelegramStandIn, **extra: str) -> dict[str, str]:
    env = {
        "PLUGINS": "telegram_bot",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_ADMIN_IDS": str(ADMIN),
        "TELEGRAM_API_URL": api.url,
    }
    env.update(extra)
    return env


@dataclass
class Harness:
    """A panel with the bot running against the stand-in."""

    app: Flask
    api: TelegramStandIn
    state: Any  # plugins.PluginState

    @property
    def bot(self) -> Any:
        return self.state.plugin

    def say(self, user_id: int, text: str, **kwargs: Any) -> None:
        """Send a message as a user and wait until the bot has answered it."""
        self.api.wait_handled(self.api.push_message(user_id, text, **kwargs))

    def press(self, user_id: int, message: Sent, label: str, **kwargs: Any) -> None:
        """Press the button whose label contains `label`, and wait for the answer."""
        data = message.button(label)
        self.api.wait_handled(self.api.press(user_id, message, data, **kwargs))

    def last(self, chat_id: int) -> Sent:
        return self.api.last(chat_id)

    def toast(self) -> str:
        return self.api.answers[-1].get("text", "") if self.api.answers else ""

    def stop(self) -> None:
        runtime = self.app.extensions.get("infinity.runtime")
        if runtime is not None:
            runtime.stop()


@pytest.fixture(name="standin")
def standin_fixture() -> Iterator[TelegramStandIn]:
    with TelegramStandIn(TOKEN) as api:
        yield api


@pytest.fixture(name="fast_bot")
def fast_bot_fixture(monkeypatch: pytest.MonkeyPatch) -> Tuning:
    monkeypatch.setattr(bot_config, "DEFAULT_TUNING", FAST)
    return FAST


@pytest.fixture(name="start_bot")
def start_bot_fixture(
    make_app: Callable[..., Flask],
    simulator: Any,
    standin: TelegramStandIn,
    fast_bot: Tuning,
) -> Iterator[Callable[..., Harness]]:
    """Start a panel (jobs and bot) with extra settings; stopped at the end."""
    started: list[Harness] = []

    def start(**extra: str) -> Harness:
        app = make_app(simulator.address, **bot_env(standin, **extra))
        with app.app_context(), db.connection_context():
            start_runtime(app)
            # The recovery run at start may send a notice: let it be done.
            standin.wait_for(lambda: Node.get().seen_at is not None, what="recovery")
        state = next(
            s for s in app.extensions["infinity.plugins"] if s.name == "telegram_bot"
        )
        harness = Harness(app, standin, state)
        started.append(harness)
        if state.status == "running":
            standin.wait_for(
                lambda: state.plugin.username or state.status != "running",
                what="getMe",
            )
        return harness

    yield start
    for harness in started:
        harness.stop()


@pytest.fixture(name="telegram")
def telegram_fixture(start_bot: Callable[..., Harness]) -> Iterator[Harness]:
    """The bot running, with an app context open in the test's thread."""
    harness = start_bot()
    assert harness.state.status == "running", harness.state.error
    with harness.app.app_context(), db.connection_context():
        yield harness
