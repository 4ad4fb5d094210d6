"""The whole slice on real parts: the panel's services drive Debian's v2ray,
and a second v2ray pushes real bytes through it from a local HTTP server."""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.daemons import ContentServer
from tests.daemons import FetchFailed
from tests.daemons import V2RayServer
from tests.daemons import eventually
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import db
from webpanel.runtime import start_runtime
from webpanel.services import accounting
from webpanel.services import clients as service

SIZE = 300_000
# VLESS adds a small request header; HTTP adds its response headers.
OVERHEAD = 2_000


@pytest.fixture
def v2ray_app(
    make_app: Callable[..., Flask], v2ray_server: V2RayServer
) -> Iterator[Flask]:
    app = make_app(
        v2ray_server.api_address,
        XRAY_FLAVOR="v2ray",
        XRAY_FLOW="",
        POLL_SECONDS="1",
        RECOVER_SECONDS="1",
    )
    with app.app_context(), db.connection_context():
        yield app


def fresh(client: Client) -> Client:
    return Client.get_by_id(client.id)


def test_it_lets_a_new_client_fetch_through_the_daemon_and_counts_its_bytes(
    v2ray_app: Flask, v2ray_proxy, content_server: ContentServer
):
    client = service.create_client("Алиса 🦊")
    proxy = v2ray_proxy(client.uuid)

    body = proxy.fetch(content_server.url(SIZE))
    accounting.poll_node(Node.get())

    assert len(body) == SIZE
    counted = fresh(client)
    assert SIZE <= counted.downlink <= SIZE + OVERHEAD
    assert 0 < counted.uplink <= OVERHEAD


def test_it_shuts_out_a_disabled_or_deleted_client_and_lets_it_back_when_enabled(
    v2ray_app: Flask, v2ray_proxy, content_server: ContentServer
):
    client = service.create_client("bob")
    proxy = v2ray_proxy(client.uuid)
    assert proxy.fetch(content_server.url(1000))

    service.disable_client(client)
    with pytest.raises(FetchFailed):
        proxy.fetch(content_server.url(1000), timeout=5)

    service.enable_client(client)
    assert len(proxy.fetch(content_server.url(1000))) == 1000

    service.delete_client(client)
    with pytest.raises(FetchFailed):
        proxy.fetch(content_server.url(1000), timeout=5)


def test_it_keeps_a_client_pending_while_the_daemon_is_down(
    v2ray_app: Flask,
    v2ray_server: V2RayServer,
    v2ray_proxy,
    content_server: ContentServer,
):
    v2ray_server.kill()
    client = service.create_client("late")
    assert fresh(client).pending and Node.get().state == "offline"

    v2ray_server.start()
    start_runtime(v2ray_app)  # the jobs apply it, nobody touches the panel

    proxy = v2ray_proxy(client.uuid)
    body = eventually(
        lambda: proxy.fetch(content_server.url(1000), timeout=3),
        retry_on=FetchFailed,
        timeout=20,
        interval=0.5,
    )
    assert len(body) == 1000
    assert eventually(lambda: _not_pending(client), retry_on=AssertionError, timeout=10)


def test_it_restores_clients_and_counts_on_after_the_daemon_restarts(
    v2ray_app: Flask,
    v2ray_server: V2RayServer,
    v2ray_proxy,
    content_server: ContentServer,
):
    client = service.create_client("carol")
    off = service.create_client("off")
    service.disable_client(off)
    proxy = v2ray_proxy(client.uuid)
    runtime = start_runtime(v2ray_app)
    assert runtime is not None
    proxy.fetch(content_server.url(SIZE))
    eventually(
        lambda: _counted_at_least(client, SIZE), retry_on=AssertionError, timeout=10
    )
    time.sleep(1.5)  # let the jobs see a rising uptime first

    v2ray_server.kill()
    with pytest.raises(FetchFailed):
        proxy.fetch(content_server.url(1000), timeout=3)
    v2ray_server.start()
    started = time.monotonic()

    body = eventually(
        lambda: proxy.fetch(content_server.url(SIZE), timeout=3),
        retry_on=FetchFailed,
        timeout=20,
        interval=0.5,
    )
    restored_in = time.monotonic() - started
    assert len(body) == SIZE
    assert restored_in < 15, f"restored after {restored_in:.1f} s"
    eventually(
        lambda: _counted_at_least(client, 2 * SIZE), retry_on=AssertionError, timeout=10
    )
    assert fresh(client).downlink <= 2 * (SIZE + OVERHEAD)
    assert fresh(off).status == "disabled"
    off_proxy = v2ray_proxy(off.uuid)
    with pytest.raises(FetchFailed):
        off_proxy.fetch(content_server.url(1000), timeout=3)


def _counted_at_least(client: Client, size: int) -> bool:
    assert fresh(client).downlink >= size
    return True


def _not_pending(client: Client) -> bool:
    assert not fresh(client).pending
    return True
