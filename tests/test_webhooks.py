"""Webhooks against a real receiver on loopback: signed, retried, in order, aside."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
from collections import defaultdict
from collections import deque
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import NamedTuple

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse as Response

from tests.daemons import eventually
from tests.daemons import free_port
from webpanel.models import ApiKey
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import WebhookDelivery
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.runtime import WEBHOOK_SECONDS
from webpanel.runtime import Runtime
from webpanel.runtime import start_runtime
from webpanel.services import webhooks
from webpanel.services.api_keys import create_key
from webpanel.services.api_keys import revoke_key
from webpanel.services.clients import GB
from webpanel.services.clients import create_client
from webpanel.services.clients import delete_client
from webpanel.services.clients import disable_client
from webpanel.services.clients import edit_client
from webpanel.services.clients import enable_client
from webpanel.services.clients import enforce_limits
from webpanel.services.clients import regenerate_uuid
from webpanel.services.clients import revoke_sub_token
from webpanel.services.nodes import set_client_nodes
from webpanel.services.webhooks import BACKOFF
from webpanel.services.webhooks import deliver_due

SLOW = 3.0  # seconds a slow receiver takes to answer
LEEWAY = timedelta(seconds=2)  # for times the product takes from its own clock


# A receiver that records what it gets and answers as the test says


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Message
    body: bytes

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    @property
    def event(self) -> str | None:
        return self.headers.get("X-Infinity-Event")


class Receiver:
    """An HTTP server on 127.0.0.1 standing in for a key's webhook target.

    It answers 200 unless told otherwise per path (`answer`), and waits
    `delay` seconds before answering; `stop` cuts every wait short.
    """

    def __init__(self) -> None:
        self.delay = 0.0
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._answered: list[Received] = []
        self._statuses: dict[str, deque[int]] = defaultdict(deque)
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-receiver",
            daemon=True,
        )

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, *statuses: int, path: str = "/hook") -> None:
        """Answer the next requests to `path` with these statuses, then 200."""
        with self._lock:
            self._statuses[path].extend(statuses)

    def requests(self, path: str | None = None) -> list[Received]:
        """What arrived (to `path`), in the order it arrived."""
        with self._lock:
            return [r for r in self._received if path in (None, r.path)]

    def answered(self) -> list[Received]:
        """The requests the receiver has finished answering."""
        with self._lock:
            return list(self._answered)

    def events(self, path: str = "/hook") -> list[str | None]:
        return [request.event for request in self.requests(path)]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        request = Received(
            handler.command, handler.path, handler.headers, handler.rfile.read(length)
        )
        with self._lock:
            self._received.append(request)
            waiting = self._statuses[handler.path]
            status = waiting.popleft() if waiting else 200
            delay = self.delay
        if delay:
            self._released.wait(delay)
        try:
            handler.send_response(status)
            if 300 <= status < 400:
                handler.send_header("Location", self.url("/redirected"))
            handler.send_header("Content-Length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except OSError:
            return  # the sender gave up waiting
        with self._lock:
            self._answered.append(request)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


class Key(NamedTuple):
    row: ApiKey
    plain: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.plain}"}


# Fixtures


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def make_key(app: Flask) -> Callable[..., Key]:
    """An API key: `make_key(name, webhook_url, scope="write")`."""

    def make(name: str, webhook_url: str = "", scope: str = "write") -> Key:
        return Key(*create_key(name, scope, webhook_url))

    return make


@pytest.fixture
def hook_key(make_key: Callable[..., Key], receiver: Receiver) -> Key:
    """A write key whose webhook is the receiver's /hook."""
    return make_key("crm", receiver.url("/hook"))


@pytest.fixture
def runtime(
    app: Flask, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """The app's jobs running, once the webhook job's run at start is over.

    From then on its next tick is WEBHOOK_SECONDS away, so only the wake-up
    a change gives can send a webhook sooner. Stopped before the receiver goes.
    """
    runs = threading.Semaphore(0)
    real = webhooks.deliver_due

    def counted(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        finally:
            runs.release()

    monkeypatch.setattr(webhooks, "deliver_due", counted)
    started = start_runtime(app)
    assert started is not None, "another runtime holds the instance lock"
    assert runs.acquire(timeout=5), "the webhook job did not run at start"
    yield started
    started.stop()


# Helpers


def deliveries(key: Key | None = None) -> list[WebhookDelivery]:
    query = WebhookDelivery.select().order_by(WebhookDelivery.id)
    if key is not None:
        query = query.where(WebhookDelivery.key == key.row.id)
    return list(query)


def fresh(delivery: WebhookDelivery) -> WebhookDelivery:
    return WebhookDelivery.get_by_id(delivery.id)


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature a receiver would check, worked out here on its own."""
    message = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def assert_signed(request: Received, key: Key) -> None:
    timestamp = request.headers["X-Infinity-Timestamp"]
    assert timestamp.isdigit()
    assert abs(int(timestamp) - time.time()) < 5
    assert request.headers["X-Infinity-Signature"] == expected_signature(
        key.row.webhook_secret, timestamp, request.body
    )


def assert_scheduled(
    delivery: WebhookDelivery, wait: int, tried_at: datetime, now: datetime
) -> None:
    """The next try is `wait` s after the failed one: by the clock, or by `now`."""
    assert delivery.next_attempt_at is not None
    earliest = tried_at + timedelta(seconds=wait) - LEEWAY
    latest = max(utcnow(), now) + timedelta(seconds=wait) + LEEWAY
    assert earliest <= delivery.next_attempt_at <= latest


# 1. What is queued, and what a receiver gets


def test_it_queues_one_delivery_per_key_with_a_webhook_and_sends_nothing_yet(
    app: Flask, receiver: Receiver, make_key: Callable[..., Key]
):
    crm = make_key("crm", receiver.url("/crm"))
    billing = make_key("billing", receiver.url("/billing"), scope="read")
    make_key("no-hook")
    old = make_key("old", receiver.url("/old"))
    revoke_key(old.row)

    create_client("Алиса", actor="test")

    rows = deliveries()
    assert sorted(row.key_id for row in rows) == sorted([crm.row.id, billing.row.id])
    assert {row.event for row in rows} == {"created"}
    assert all(row.attempts == 0 and row.delivered_at is None for row in rows)
    assert receiver.requests() == []


def test_it_posts_a_signed_json_event_when_a_client_is_created(
    app: Flask, receiver: Receiver, hook_key: Key
):
    made = create_client("Алиса 🦊", data_limit=5 * GB, actor="test")
    [delivery] = deliveries()

    assert deliver_due() == (1, 0)

    [request] = receiver.requests()
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Infinity-Event"] == "created"
    assert request.headers["X-Infinity-Delivery"] == str(delivery.id)
    assert_signed(request, hook_key)
    assert request.body == delivery.body.encode()
    payload = request.payload
    assert payload["event"] == "created"
    assert payload["actor"] == "test"
    assert payload["old_status"] is None
    assert {k: payload["client"][k] for k in ("name", "email", "uuid", "status")} == {
        "name": "Алиса 🦊",
        "email": made.email,
        "uuid": made.uuid,
        "status": "active",
    }
    assert payload["client"]["limit"] == 5 * GB
    delivery = fresh(delivery)
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    assert (delivery.attempts, delivery.last_error) == (1, "")


def test_it_posts_the_created_event_for_a_client_made_through_the_api(
    client: FlaskClient, receiver: Receiver, hook_key: Key, make_key
):
    other = make_key("billing", receiver.url("/billing"))

    response = client.post(
        "/api/v1/clients", json={"name": "Bob"}, headers=hook_key.bearer
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    made = response.get_json()
    assert len(deliveries()) == 2

    assert deliver_due() == (2, 0)

    for key, path in ((hook_key, "/hook"), (other, "/billing")):
        [request] = receiver.requests(path)
        assert request.event == "created"
        assert_signed(request, key)
        payload = request.payload
        assert payload["event"] == "created"
        assert payload["actor"] == "api:crm"
        for field in ("name", "email", "uuid", "status"):
            assert payload["client"][field] == made[field]


# 2. Every change, in the order it happened


def test_it_sends_each_change_of_a_client_in_the_order_it_happened(
    app: Flask, receiver: Receiver, hook_key: Key
):
    now = utcnow()
    made = create_client("Carol", data_limit=GB, actor="admin")
    edit_client(made, name="Caroline", data_limit=GB, expire_at=None, actor="admin")
    disable_client(made, actor="admin")
    enable_client(made, actor="admin")
    Client.update(uplink=2 * GB).where(Client.id == made.id).execute()
    enforce_limits()
    edit_client(
        Client.get_by_id(made.id),
        name="Caroline",
        data_limit=None,
        expire_at=now + timedelta(hours=1),
        actor="admin",
    )
    enforce_limits(now + timedelta(hours=2))
    delete_client(Client.get_by_id(made.id), actor="admin")

    assert deliver_due() == (8, 0)

    got = [
        (
            request.event,
            request.payload["event"],
            request.payload["client"]["status"],
            request.payload["old_status"],
            request.payload["actor"],
        )
        for request in receiver.requests()
    ]
    assert got == [
        ("created", "created", "active", None, "admin"),
        ("edited", "edited", "active", "active", "admin"),
        ("disabled", "disabled", "disabled", "active", "admin"),
        ("enabled", "enabled", "active", "disabled", "admin"),
        ("limited", "limited", "limited", "active", "enforcement"),
        ("edited", "edited", "active", "limited", "admin"),
        ("expired", "expired", "expired", "active", "enforcement"),
        ("deleted", "deleted", "expired", "expired", "admin"),
    ]
    names = [request.payload["client"]["name"] for request in receiver.requests()]
    assert names == ["Carol"] + ["Caroline"] * 7
    ids = [int(r.headers["X-Infinity-Delivery"]) for r in receiver.requests()]
    assert ids == sorted(ids)


def test_it_sends_the_new_subscription_url_and_uuid_and_a_change_of_nodes(
    app: Flask, receiver: Receiver, hook_key: Key
):
    # Outside a request, subscription URLs are built on PANEL_PUBLIC_URL.
    settings = app.extensions["infinity.settings"]
    public = dataclasses.replace(settings, panel_public_url="https://panel.example")
    app.extensions["infinity.settings"] = public
    made = create_client("Dan", actor="admin")
    old_url = made.sub_token
    revoke_sub_token(made, actor="admin")
    regenerate_uuid(made, actor="admin")
    set_client_nodes(made, [Node.get(Node.name == "main")], actor="admin")

    assert deliver_due() == (4, 0)
    got = {r.event: r.payload["client"] for r in receiver.requests()}
    assert list(got) == ["created", "new_sub_token", "new_uuid", "nodes"]
    assert got["created"]["subscription_url"].endswith(f"/sub/{old_url}")
    new_url = f"https://panel.example/sub/{made.sub_token}"
    assert got["new_sub_token"]["subscription_url"] == new_url
    assert got["new_uuid"]["uuid"] == made.uuid != got["created"]["uuid"]
    assert got["nodes"]["nodes"] == ["main"]


def test_it_announces_a_client_made_for_some_nodes_with_those_nodes(
    client: FlaskClient, receiver: Receiver, hook_key: Key
):
    response = client.post(
        "/api/v1/clients",
        json={"name": "Ola", "nodes": ["main"]},
        headers=hook_key.bearer,
    )
    assert response.status_code == 201

    assert deliver_due() == (1, 0)
    [request] = receiver.requests()
    assert (request.event, request.payload["client"]["nodes"]) == ("created", ["main"])


# 3. Retries with back-off, order per key


def test_it_retries_a_failed_delivery_with_back_off_then_gives_up(
    app: Flask, receiver: Receiver, hook_key: Key
):
    tries = len(BACKOFF) + 1
    receiver.answer(*[500] * tries)
    create_client("Dave")
    [delivery] = deliveries()

    tried_at = utcnow()
    assert deliver_due() == (0, 1)
    delivery = fresh(delivery)
    assert (delivery.attempts, delivery.last_error) == (1, "HTTP 500")
    assert delivery.delivered_at is None
    assert_scheduled(delivery, BACKOFF[0], tried_at, tried_at)

    # Not due yet: nothing is sent.
    assert deliver_due() == (0, 0)
    assert len(receiver.requests()) == 1

    for attempt in range(2, tries + 1):
        due = delivery.next_attempt_at
        assert deliver_due(now=due - timedelta(seconds=1)) == (0, 0)
        tried_at = utcnow()
        assert deliver_due(now=due) == (0, 1)
        delivery = fresh(delivery)
        assert (delivery.attempts, delivery.last_error) == (attempt, "HTTP 500")
        if attempt <= len(BACKOFF):
            assert_scheduled(delivery, BACKOFF[attempt - 1], tried_at, due)

    assert delivery.next_attempt_at is None, "given up after the last back-off"
    assert delivery.delivered_at is None
    assert deliver_due(now=utcnow() + timedelta(days=1)) == (0, 0)
    assert len(receiver.requests()) == tries
    assert receiver.events() == ["created"] * tries


def test_it_delivers_on_the_retry_once_the_receiver_recovers(
    app: Flask, receiver: Receiver, hook_key: Key
):
    receiver.answer(500)
    create_client("Dora")
    assert deliver_due() == (0, 1)
    [delivery] = deliveries()

    assert deliver_due(now=fresh(delivery).next_attempt_at) == (1, 0)

    delivery = fresh(delivery)
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    assert delivery.attempts == 2
    first, second = receiver.requests()
    assert first.body == second.body
    assert first.headers["X-Infinity-Delivery"] == second.headers["X-Infinity-Delivery"]
    assert_signed(second, hook_key)


def test_it_holds_a_keys_later_events_behind_one_failing_in_the_same_run(
    app: Flask, receiver: Receiver, make_key: Callable[..., Key]
):
    make_key("stuck", receiver.url("/stuck"))
    make_key("fine", receiver.url("/fine"))
    receiver.answer(500, path="/stuck")
    made = create_client("Erin")
    disable_client(made)

    assert deliver_due() == (2, 1)

    assert receiver.events("/stuck") == ["created"]
    assert receiver.events("/fine") == ["created", "disabled"]


def test_it_holds_a_keys_later_events_while_an_earlier_one_waits_to_retry(
    app: Flask, receiver: Receiver, make_key: Callable[..., Key]
):
    make_key("stuck", receiver.url("/stuck"))
    make_key("fine", receiver.url("/fine"))
    receiver.answer(500, path="/stuck")
    made = create_client("Erin")
    assert deliver_due() == (1, 1)

    disable_client(made)
    sent = deliver_due()

    assert receiver.events("/stuck") == ["created"], "sent past a failed event"
    assert receiver.events("/fine") == ["created", "disabled"]
    assert sent == (1, 0)

    later = utcnow() + timedelta(seconds=BACKOFF[0] + 1)
    assert deliver_due(now=later) == (2, 0)
    assert receiver.events("/stuck") == ["created", "created", "disabled"]


def test_it_keeps_sending_to_other_keys_while_one_receiver_is_down_for_long(
    app: Flask, receiver: Receiver, make_key: Callable[..., Key]
):
    make_key("dead", f"http://127.0.0.1:{free_port()}/hook")
    make_key("fine", receiver.url("/fine"))
    crowd = [create_client(f"Guest {n}") for n in range(webhooks.PER_KEY + 20)]
    assert deliver_due() == (webhooks.PER_KEY, 1)

    create_client("Late")
    deliver_due()

    names = [r.payload["client"]["name"] for r in receiver.requests()]
    assert names == [c.name for c in crowd] + ["Late"]


# 4. Redirects, dead and slow receivers


def test_it_counts_a_redirect_as_a_failure_and_does_not_follow_it(
    app: Flask, receiver: Receiver, hook_key: Key
):
    receiver.answer(302)
    create_client("Frank")

    assert deliver_due() == (0, 1)

    [delivery] = deliveries()
    assert (delivery.attempts, delivery.last_error) == (1, "HTTP 302")
    assert delivery.next_attempt_at is not None
    assert delivery.delivered_at is None
    assert [(r.method, r.path) for r in receiver.requests()] == [("POST", "/hook")]


def test_it_counts_a_refused_connection_as_a_failure_with_a_message(
    app: Flask, make_key: Callable[..., Key]
):
    make_key("gone", f"http://127.0.0.1:{free_port()}/hook")
    create_client("Gus")

    assert deliver_due() == (0, 1)

    [delivery] = deliveries()
    assert delivery.attempts == 1
    assert "refused" in delivery.last_error.lower()
    assert delivery.next_attempt_at is not None


def test_it_gives_up_on_a_receiver_slower_than_the_timeout(
    app: Flask, receiver: Receiver, hook_key: Key, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(webhooks, "TIMEOUT", 0.5)
    receiver.delay = 10
    create_client("Hank")

    started = time.monotonic()
    assert deliver_due() == (0, 1)
    took = time.monotonic() - started

    assert took < SLOW, f"the job waited {took:.1f} s"
    [delivery] = deliveries()
    assert delivery.attempts == 1
    assert "timed out" in delivery.last_error
    assert delivery.next_attempt_at is not None
    assert len(receiver.requests()) == 1


@pytest.fixture
def dripping() -> Iterator[str]:
    """A receiver on loopback that answers one byte every 0.2 s, for ever."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                for byte in itertools.cycle(b"HTTP/1.1 200 OK\r\nX-Slow: "):
                    if stop.wait(0.2):
                        break
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_it_gives_a_receiver_that_drips_its_answer_one_deadline_in_all(
    app: Flask, make_key: Callable[..., Key], dripping: str, monkeypatch
):
    monkeypatch.setattr(webhooks, "TIMEOUT", 0.5)  # each byte beats this
    monkeypatch.setattr(webhooks, "DEADLINE", 1.0)
    make_key("drip", dripping)
    create_client("Ivan")

    started = time.monotonic()
    assert deliver_due() == (0, 1)
    took = time.monotonic() - started

    assert took < 3, f"the job waited {took:.1f} s"
    [delivery] = deliveries()
    assert delivery.last_error == "no answer within 1 s"


def test_it_sends_the_user_and_password_of_a_webhook_url_as_basic_auth(
    app: Flask, receiver: Receiver, make_key: Callable[..., Key]
):
    url = receiver.url("/hook").replace("http://", "http://shop:p%40ss@")
    make_key("basic", url)
    create_client("Jo")

    assert deliver_due() == (1, 0)
    [request] = receiver.requests()
    expected = base64.b64encode(b"shop:p@ss").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_it_delivers_to_a_url_with_letters_beyond_ascii_in_its_path(
    app: Flask, receiver: Receiver, make_key: Callable[..., Key]
):
    key = make_key("intl", receiver.url("/hoök"))
    assert ApiKey.get_by_id(key.row.id).webhook_url == receiver.url("/ho%C3%B6k")
    create_client("Ölaf")

    assert deliver_due() == (1, 0)
    assert [r.path for r in receiver.requests()] == ["/ho%C3%B6k"]


def test_it_marks_deliveries_sent_while_others_write_to_the_database(
    app: Flask, receiver: Receiver, hook_key: Key
):
    for n in range(3):
        create_client(f"Kim {n}")
    receiver.delay = 0.5

    def busy() -> None:
        # Another thread has a connection of its own, as another worker would.
        with app.app_context(), db.connection_context():
            for n in range(3):
                create_client(f"Other {n}")
                time.sleep(0.3)

    writer = threading.Thread(target=busy)
    writer.start()
    sent = deliver_due()
    writer.join()

    assert sent[0] >= 3
    assert [d.delivered_at is not None for d in deliveries()][:3] == [True] * 3


# 5. and 6. Sent beside requests, by the runtime


def create_before_the_receiver_answers(client: FlaskClient, key: Key) -> Response:
    started = time.monotonic()
    response = client.post("/api/v1/clients", json={"name": "Ivy"}, headers=key.bearer)
    took = time.monotonic() - started

    assert response.status_code == 201
    assert took < SLOW / 3, f"the request took {took:.1f} s"
    return response


def test_it_only_queues_inside_an_api_request(
    client: FlaskClient, receiver: Receiver, hook_key: Key
):
    receiver.delay = SLOW
    create_before_the_receiver_answers(client, hook_key)
    assert receiver.requests() == []
    [delivery] = deliveries()
    assert (delivery.attempts, delivery.delivered_at) == (0, None)


def test_it_answers_the_api_before_a_slow_receiver_has_answered(
    client: FlaskClient, receiver: Receiver, hook_key: Key, runtime: Runtime
):
    receiver.delay = SLOW
    response = create_before_the_receiver_answers(client, hook_key)
    assert receiver.answered() == []

    def answered() -> Received:
        [request] = receiver.answered()
        return request

    request = eventually(answered, retry_on=ValueError, timeout=SLOW + 3)
    assert request.event == "created"
    assert request.payload["client"]["uuid"] == response.get_json()["uuid"]


def test_it_sends_a_new_clients_webhook_by_itself_with_the_runtime_running(
    app: Flask, receiver: Receiver, hook_key: Key, runtime: Runtime
):
    made = create_client("Jack", actor="test")

    def arrived() -> Received:
        [request] = receiver.requests()
        return request

    request = eventually(arrived, retry_on=ValueError, timeout=WEBHOOK_SECONDS - 2)
    assert request.event == "created"
    assert request.payload["client"]["email"] == made.email
    assert_signed(request, hook_key)

    def delivered() -> None:
        [delivery] = deliveries()
        assert delivery.delivered_at is not None

    eventually(delivered, retry_on=AssertionError, timeout=3)


def test_it_sends_a_change_made_during_a_delivery_run_right_after_that_run(
    app: Flask, receiver: Receiver, hook_key: Key, runtime: Runtime
):
    busy = 2.0
    assert busy + 1.5 < WEBHOOK_SECONDS
    receiver.delay = busy
    create_client("Kai")
    eventually(lambda: receiver.requests()[0], retry_on=IndexError, timeout=3)

    # The job is waiting on the receiver now; this change wakes it again.
    create_client("Lou")

    def both_arrived() -> None:
        names = [r.payload["client"]["name"] for r in receiver.requests()]
        assert names == ["Kai", "Lou"]

    eventually(both_arrived, retry_on=AssertionError, timeout=busy + 1.5)


# 7. Queueing never fails a change


def test_it_makes_the_change_even_when_queueing_fails(
    client: FlaskClient,
    receiver: Receiver,
    hook_key: Key,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("the queue is broken")

    monkeypatch.setattr(webhooks, "queue", broken)

    made = create_client("Kim")
    disable_client(made)
    assert Client.get_by_id(made.id).status == "disabled"
    delete_client(made)
    assert Client.get_or_none(Client.id == made.id) is None
    response = client.post(
        "/api/v1/clients", json={"name": "Lee"}, headers=hook_key.bearer
    )
    assert response.status_code == 201
    assert Client.get_or_none(Client.name == "Lee") is not None

    assert deliveries() == []
    assert "could not queue webhook" in caplog.text
    assert deliver_due() == (0, 0)
    assert receiver.requests() == []


# 8. Revoked keys


def test_it_does_not_send_a_revoked_keys_pending_deliveries(
    app: Flask, receiver: Receiver, hook_key: Key
):
    create_client("Mia")
    revoke_key(hook_key.row)

    assert deliver_due() == (0, 0)

    assert receiver.requests() == []
    [delivery] = deliveries()
    assert delivery.next_attempt_at is None
    assert delivery.delivered_at is None
    assert "revoked" in delivery.last_error


def test_it_stops_retrying_for_a_key_revoked_while_its_delivery_fails(
    app: Flask, receiver: Receiver, hook_key: Key
):
    receiver.answer(500)
    create_client("Ned")
    assert deliver_due() == (0, 1)
    revoke_key(hook_key.row)

    assert deliver_due(now=utcnow() + timedelta(seconds=BACKOFF[0] + 1)) == (0, 0)

    assert len(receiver.requests()) == 1
    [delivery] = deliveries()
    assert delivery.next_attempt_at is None
    assert delivery.delivered_at is None
    assert "revoked" in delivery.last_error
