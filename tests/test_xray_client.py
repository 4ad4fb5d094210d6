"""The gateway client against the simulator, a real gRPC server on loopback."""

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.daemons import eventually
from xray.client import AlreadyExists
from xray.client import NotFound
from xray.client import Unavailable
from xray.client import UnknownInbound
from xray.client import Unsupported
from xray.client import User
from xray.client import XrayClient
from xray.client import XrayError
from xray.client import user_traffic
from xray.simulator import Simulator

TAG = "vless-in"


def make_user(email: str, flow: str = "") -> User:
    return User(email=email, uuid=str(uuid.uuid4()), flow=flow)


@pytest.fixture
def client(simulator: Simulator) -> Iterator[XrayClient]:
    with XrayClient(simulator.address, timeout=2.0) as client:
        yield client


# Users


def test_it_adds_a_user_that_the_daemon_then_holds(client, simulator):
    alice = make_user("c1", flow="xtls-rprx-vision")

    client.add_user(TAG, alice)

    assert simulator.users() == {"c1": alice}


def test_it_raises_already_exists_for_an_email_in_any_case(client):
    client.add_user(TAG, make_user("c1"))

    with pytest.raises(AlreadyExists, match="User C1 already exists"):
        client.add_user(TAG, make_user("C1"))


def test_it_removes_a_user_by_email_ignoring_case(client, simulator):
    client.add_user(TAG, make_user("c1"))

    client.remove_user(TAG, "C1")

    assert simulator.users() == {}


def test_it_raises_not_found_when_removing_a_missing_user(client):
    with pytest.raises(NotFound, match="User c9 not found"):
        client.remove_user(TAG, "c9")


def test_it_refuses_an_empty_email_before_calling_the_daemon(client, simulator):
    simulator.stop()

    # A call would raise Unavailable: ValueError proves none was made.
    with pytest.raises(ValueError, match="empty"):
        client.add_user(TAG, make_user(""))
    with pytest.raises(ValueError, match="empty"):
        client.remove_user(TAG, "")


def test_it_reports_an_unknown_tag_as_its_own_error_not_as_not_found(client):
    with pytest.raises(UnknownInbound, match="handler not found: nope") as caught:
        client.remove_user("nope", "c1")

    assert not isinstance(caught.value, NotFound)
    assert isinstance(caught.value, XrayError)


def test_it_carries_the_daemons_message_and_code(client):
    client.add_user(TAG, make_user("c1"))

    with pytest.raises(AlreadyExists) as caught:
        client.add_user(TAG, make_user("c1"))

    assert caught.value.message == "proxy/vless: User c1 already exists."
    assert caught.value.code == "UNKNOWN"


def test_it_adds_many_users_and_reports_only_the_failures(client, simulator):
    users = [make_user(f"c{number}") for number in range(2000)]
    client.add_user(TAG, users[7])

    failures = client.add_users(TAG, users, concurrency=16)

    assert list(failures) == ["c7"]
    assert isinstance(failures["c7"], AlreadyExists)
    assert len(simulator.users()) == 2000


def test_it_lists_users_where_the_daemon_can(client):
    alice = make_user("c1", flow="xtls-rprx-vision")
    bob = make_user("c2")
    client.add_user(TAG, alice)
    client.add_user(TAG, bob)

    listed = client.list_users(TAG)

    assert sorted(listed, key=lambda user: user.email) == [alice, bob]
    assert client.count_users(TAG) == 2


def test_it_raises_unsupported_where_the_daemon_cannot_list():
    simulator = Simulator(can_list=False).start()
    try:
        with XrayClient(simulator.address) as client:
            with pytest.raises(Unsupported):
                client.list_users(TAG)
            with pytest.raises(Unsupported):
                client.count_users(TAG)
    finally:
        simulator.stop()


# Counters


def test_it_raises_not_found_for_a_counter_before_any_traffic(client):
    client.add_user(TAG, make_user("c1"))

    with pytest.raises(NotFound, match="not found"):
        client.get_stats("user>>>c1>>>traffic>>>downlink")


def test_it_reads_one_counter(client, simulator):
    client.add_user(TAG, make_user("c1"))
    simulator.push_traffic("c1", uplink=10, downlink=2500)

    assert client.get_stats("user>>>c1>>>traffic>>>downlink") == 2500


def test_it_queries_counters_by_substring(client, simulator):
    for email in ("c1", "c12", "c2"):
        client.add_user(TAG, make_user(email))
        simulator.push_traffic(email, uplink=1, downlink=2)

    found = client.query_stats("c1")

    assert set(found) == {
        "user>>>c1>>>traffic>>>uplink",
        "user>>>c1>>>traffic>>>downlink",
        "user>>>c12>>>traffic>>>uplink",
        "user>>>c12>>>traffic>>>downlink",
    }
    assert "inbound>>>vless-in>>>traffic>>>uplink" in client.query_stats("")


def test_it_resets_counters_only_when_asked(client, simulator):
    client.add_user(TAG, make_user("c1"))
    simulator.push_traffic("c1", downlink=500)

    assert client.query_stats("user>>>")["user>>>c1>>>traffic>>>downlink"] == 500
    assert client.query_stats("user>>>", reset=True) == {
        "user>>>c1>>>traffic>>>uplink": 0,
        "user>>>c1>>>traffic>>>downlink": 500,
    }
    assert client.get_stats("user>>>c1>>>traffic>>>downlink") == 0


def test_it_keeps_counters_after_remove_and_continues_after_re_add(client, simulator):
    alice = make_user("c1")
    client.add_user(TAG, alice)
    simulator.push_traffic("c1", uplink=100, downlink=1000)

    client.remove_user(TAG, "c1")
    assert user_traffic(client.query_stats("user>>>")) == {"c1": (100, 1000)}

    client.add_user(TAG, alice)
    simulator.push_traffic("c1", uplink=1, downlink=10)
    assert user_traffic(client.query_stats("user>>>")) == {"c1": (101, 1010)}


def test_user_traffic_groups_counters_by_email():
    stats = {
        "user>>>c1>>>traffic>>>uplink": 5,
        "user>>>c1>>>traffic>>>downlink": 50,
        "user>>>c2>>>traffic>>>downlink": 7,
        "inbound>>>vless-in>>>traffic>>>downlink": 57,
        "user>>>c3>>>online": 1,
    }

    assert user_traffic(stats) == {"c1": (5, 50), "c2": (0, 7)}


# Restarts and outages


def test_it_sees_a_restart_as_lower_uptime_and_an_empty_user_table(client, simulator):
    client.add_user(TAG, make_user("c1"))
    simulator.push_traffic("c1", downlink=10)
    simulator.advance_uptime(120)
    before = client.sys_stats().uptime

    simulator.restart()
    after = eventually(client.sys_stats, retry_on=Unavailable)

    assert before >= 120
    assert after.uptime < before
    assert client.list_users(TAG) == []
    with pytest.raises(NotFound):
        client.get_stats("user>>>c1>>>traffic>>>downlink")


def test_it_raises_unavailable_within_the_deadline_when_the_daemon_stalls(
    simulator,
):
    simulator.stall(5)
    with XrayClient(simulator.address, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            client.sys_stats()
        elapsed = time.monotonic() - started

    assert elapsed < 1.5


def test_it_raises_unavailable_when_the_daemon_is_down(client, simulator):
    simulator.stop()

    with pytest.raises(Unavailable):
        client.add_user(TAG, make_user("c1"))


def test_it_works_again_soon_after_the_daemon_comes_back(client, simulator):
    simulator.stop()
    with pytest.raises(Unavailable):
        client.sys_stats()

    simulator.start()
    started = time.monotonic()
    eventually(client.sys_stats, retry_on=Unavailable, timeout=5)

    assert time.monotonic() - started < 3


# Prefixes


@pytest.mark.parametrize("prefix", ["xray", "v2ray.core"])
def test_it_drives_a_daemon_of_either_prefix(prefix):
    simulator = Simulator(prefix=prefix).start()
    try:
        with XrayClient(simulator.address, prefix=prefix) as client:
            client.add_user(TAG, make_user("c1"))
            simulator.push_traffic("c1", downlink=3)
            client.remove_user(TAG, "c1")

            assert client.get_stats("user>>>c1>>>traffic>>>downlink") == 3
    finally:
        simulator.stop()


def test_it_fails_clearly_when_the_prefix_does_not_match_the_daemon(simulator):
    client = XrayClient(simulator.address, prefix="v2ray.core")

    with client, pytest.raises(XrayError, match="unknown type"):
        client.add_user(TAG, make_user("c1"))


def test_it_rejects_an_unknown_prefix():
    with pytest.raises(ValueError, match="prefix"):
        XrayClient("127.0.0.1:1", prefix="v2fly")
