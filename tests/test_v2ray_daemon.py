"""The client against Debian's real v2ray 4.34 (proto prefix `v2ray.core`).

Traffic flows app -> V2RayProxyClient (SOCKS5 in, VLESS out) -> the node's
VLESS inbound -> freedom -> ContentServer, all on loopback.
"""

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.daemons import FetchFailed
from tests.daemons import V2RayServer
from tests.daemons import content_bytes
from tests.daemons import eventually
from xray.client import AlreadyExists
from xray.client import NotFound
from xray.client import Unavailable
from xray.client import UnknownInbound
from xray.client import Unsupported
from xray.client import User
from xray.client import XrayClient
from xray.client import user_traffic

TAG = "vless-in"
# The HTTP/1.0 request and response headers that travel with the body.
HEADER_ALLOWANCE = 1024


def make_user(email: str) -> User:
    return User(email=email, uuid=str(uuid.uuid4()))


@pytest.fixture
def client(v2ray_server: V2RayServer) -> Iterator[XrayClient]:
    with XrayClient(v2ray_server.api_address, prefix="v2ray.core") as client:
        yield client


def test_it_carries_a_users_traffic_and_counts_it(client, v2ray_proxy, content_server):
    alice = make_user("c1")
    client.add_user(TAG, alice)

    body = v2ray_proxy(alice.uuid).fetch(content_server.url(200_000))

    assert body == content_bytes(200_000)
    uplink, downlink = user_traffic(client.query_stats("user>>>"))["c1"]
    assert 200_000 <= downlink <= 200_000 + HEADER_ALLOWANCE
    assert 0 < uplink <= HEADER_ALLOWANCE


def test_a_removed_user_can_no_longer_connect(client, v2ray_proxy, content_server):
    alice = make_user("c1")
    client.add_user(TAG, alice)
    proxy = v2ray_proxy(alice.uuid)
    proxy.fetch(content_server.url(10))

    client.remove_user(TAG, "c1")

    with pytest.raises(FetchFailed, match="empty reply"):
        proxy.fetch(content_server.url(10))


def test_it_raises_already_exists_for_an_email_in_any_case(client):
    client.add_user(TAG, make_user("c1"))

    with pytest.raises(AlreadyExists, match="User C1 already exists"):
        client.add_user(TAG, make_user("C1"))


def test_it_raises_not_found_when_removing_a_missing_user(client):
    with pytest.raises(NotFound, match="User c9 not found"):
        client.remove_user(TAG, "c9")


def test_it_raises_unknown_inbound_for_a_wrong_tag(client):
    with pytest.raises(UnknownInbound, match="handler not found: nope"):
        client.add_user("nope", make_user("c1"))


def test_it_raises_not_found_for_a_counter_before_any_traffic(client):
    client.add_user(TAG, make_user("c1"))

    with pytest.raises(NotFound, match="not found"):
        client.get_stats("user>>>c1>>>traffic>>>downlink")


def test_listing_users_is_unsupported(client):
    with pytest.raises(Unsupported):
        client.list_users(TAG)


def test_counters_outlive_a_removal_and_continue_after_re_adding(
    client, v2ray_proxy, content_server
):
    alice = make_user("c1")
    client.add_user(TAG, alice)
    proxy = v2ray_proxy(alice.uuid)
    proxy.fetch(content_server.url(5000))
    first = client.get_stats("user>>>c1>>>traffic>>>downlink")

    client.remove_user(TAG, "c1")
    assert client.get_stats("user>>>c1>>>traffic>>>downlink") == first

    client.add_user(TAG, alice)
    proxy.fetch(content_server.url(5000))
    assert client.get_stats("user>>>c1>>>traffic>>>downlink") == 2 * first


def test_a_later_user_takes_over_a_shared_uuid(client, v2ray_proxy, content_server):
    shared = str(uuid.uuid4())
    client.add_user(TAG, User(email="c1", uuid=shared))
    client.add_user(TAG, User(email="c2", uuid=shared))

    v2ray_proxy(shared).fetch(content_server.url(100))

    assert set(user_traffic(client.query_stats("user>>>"))) == {"c2"}


def test_after_a_kill_and_start_it_has_forgotten_users_and_uptime(
    client, v2ray_server, v2ray_proxy, content_server
):
    alice = make_user("c1")
    client.add_user(TAG, alice)
    proxy = v2ray_proxy(alice.uuid)
    proxy.fetch(content_server.url(100))
    time.sleep(2.1)
    assert client.sys_stats().uptime >= 2

    v2ray_server.kill()
    with pytest.raises(Unavailable):
        client.sys_stats()
    v2ray_server.start()

    assert eventually(client.sys_stats, retry_on=Unavailable).uptime <= 1
    with pytest.raises(FetchFailed):
        proxy.fetch(content_server.url(100))
    with pytest.raises(NotFound):
        client.get_stats("user>>>c1>>>traffic>>>downlink")

    client.add_user(TAG, alice)
    assert proxy.fetch(content_server.url(100)) == content_bytes(100)


def test_it_adds_a_thousand_users_concurrently(client):
    users = [make_user(f"c{number}") for number in range(1000)]

    started = time.monotonic()
    failures = client.add_users(TAG, users)
    elapsed = time.monotonic() - started

    assert failures == {}
    assert elapsed < 5
    with pytest.raises(AlreadyExists):
        client.add_user(TAG, users[-1])


def test_the_wrong_prefix_is_unsupported_with_a_hint(v2ray_server):
    client = XrayClient(v2ray_server.api_address, prefix="xray")

    with client, pytest.raises(Unsupported, match="is prefix 'xray' right"):
        client.sys_stats()


def test_inbound_counters_include_the_protocol_overhead(
    client, v2ray_proxy, content_server
):
    alice = make_user("c1")
    client.add_user(TAG, alice)

    v2ray_proxy(alice.uuid).fetch(content_server.url(1000))

    stats = client.query_stats(">>>traffic>>>downlink")
    user_bytes = stats["user>>>c1>>>traffic>>>downlink"]
    assert stats[f"inbound>>>{TAG}>>>traffic>>>downlink"] > user_bytes
