"""The simulator behaves like the daemon where the panel depends on it."""

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest

from tests.daemons import eventually
from tests.daemons import free_port
from xray.client import NotFound
from xray.client import Unavailable
from xray.client import User
from xray.client import XrayClient
from xray.client import XrayError
from xray.protos import stats_command_pb2 as stats_pb
from xray.simulator import Refused
from xray.simulator import Simulator

TAG = "vless-in"


def make_user(email: str, user_id: str | None = None) -> User:
    return User(email=email, uuid=user_id or str(uuid.uuid4()))


@pytest.fixture
def client(simulator: Simulator) -> Iterator[XrayClient]:
    with XrayClient(simulator.address, timeout=5.0) as client:
        yield client


def test_it_listens_on_loopback_on_the_port_it_picked(simulator):
    assert simulator.address == f"127.0.0.1:{simulator.port}"
    assert simulator.port > 0


def test_it_answers_the_old_service_names_with_its_own_message_types(simulator):
    # Xray serves v2ray.core.* services but only knows xray.* types.
    with XrayClient(simulator.address, prefix="v2ray.core") as client:
        assert client.sys_stats().uptime >= 0
        with pytest.raises(XrayError, match="unknown type"):
            client.add_user(TAG, make_user("c1"))


def test_it_refuses_a_malformed_uuid(client):
    with pytest.raises(XrayError, match="invalid UUID"):
        client.add_user(TAG, User(email="c1", uuid="not-a-uuid"))


def test_it_lets_a_later_user_take_over_a_shared_uuid(client, simulator):
    shared = str(uuid.uuid4())
    client.add_user(TAG, make_user("c1", shared))
    client.add_user(TAG, make_user("c2", shared))

    counted_as = simulator.push_traffic("c1", downlink=10)

    assert counted_as == "c2"
    assert client.query_stats("user>>>") == {
        "user>>>c2>>>traffic>>>uplink": 0,
        "user>>>c2>>>traffic>>>downlink": 10,
    }


def test_removing_the_first_owner_of_a_shared_uuid_locks_the_second_out(
    client, simulator
):
    shared = str(uuid.uuid4())
    client.add_user(TAG, make_user("c1", shared))
    client.add_user(TAG, make_user("c2", shared))

    client.remove_user(TAG, "c1")

    assert list(simulator.users()) == ["c2"]
    with pytest.raises(LookupError):
        simulator.push_traffic("c2", downlink=1)


def test_it_counts_traffic_only_for_a_present_user(client, simulator):
    with pytest.raises(LookupError):
        simulator.push_traffic("c1", downlink=1)

    assert simulator.counters() == {}


def test_it_names_counters_with_the_email_as_sent(client, simulator):
    client.add_user(TAG, make_user("Mixed.Case"))

    simulator.push_traffic("mixed.case", uplink=4, downlink=8)

    assert simulator.counters() == {
        "inbound>>>vless-in>>>traffic>>>uplink": 4,
        "inbound>>>vless-in>>>traffic>>>downlink": 8,
        "user>>>Mixed.Case>>>traffic>>>uplink": 4,
        "user>>>Mixed.Case>>>traffic>>>downlink": 8,
    }


def test_it_answers_a_missing_counter_with_not_found(simulator):
    channel = grpc.insecure_channel(simulator.address)
    get_stats = channel.unary_unary(
        "/xray.app.stats.command.StatsService/GetStats",
        request_serializer=stats_pb.GetStatsRequest.SerializeToString,
        response_deserializer=stats_pb.GetStatsResponse.FromString,
    )
    try:
        with pytest.raises(grpc.RpcError) as caught:
            get_stats(stats_pb.GetStatsRequest(name="nothing"), timeout=5)
    finally:
        channel.close()

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "nothing not found."


def query(simulator: Simulator, **fields) -> set[str]:
    channel = grpc.insecure_channel(simulator.address)
    query_stats = channel.unary_unary(
        "/xray.app.stats.command.StatsService/QueryStats",
        request_serializer=stats_pb.QueryStatsRequest.SerializeToString,
        response_deserializer=stats_pb.QueryStatsResponse.FromString,
    )
    try:
        response = query_stats(stats_pb.QueryStatsRequest(**fields), timeout=5)
    finally:
        channel.close()
    return {stat.name for stat in response.stat}


def test_it_matches_several_patterns_and_regexps(client, simulator):
    for email in ("c1", "c2", "c3"):
        client.add_user(TAG, make_user(email))
        simulator.push_traffic(email, downlink=1)

    by_substrings = query(simulator, patterns=["c1>>>", "c3>>>"])
    by_regexp = query(simulator, patterns=[r"^user>>>c[12]>>>.*downlink$"], regexp=True)

    assert by_substrings == {
        "user>>>c1>>>traffic>>>uplink",
        "user>>>c1>>>traffic>>>downlink",
        "user>>>c3>>>traffic>>>uplink",
        "user>>>c3>>>traffic>>>downlink",
    }
    assert by_regexp == {
        "user>>>c1>>>traffic>>>downlink",
        "user>>>c2>>>traffic>>>downlink",
    }


def test_it_advances_uptime_without_sleeping(client, simulator):
    simulator.advance_uptime(3600)

    assert 3600 <= client.sys_stats().uptime <= 3602


def test_it_restarts_on_the_same_port_with_nothing_remembered(client, simulator):
    port = simulator.port
    client.add_user(TAG, make_user("c1"))
    simulator.push_traffic("c1", downlink=1)

    simulator.restart()

    assert simulator.port == port
    assert simulator.users() == {}
    assert simulator.counters() == {}
    listed = eventually(lambda: client.list_users(TAG), retry_on=Unavailable)
    assert listed == []


def test_a_stopped_simulator_refuses_connections(client, simulator):
    simulator.stop()

    with pytest.raises(Unavailable, match="refused|failed to connect"):
        client.sys_stats()


def test_it_refuses_to_share_a_taken_port(simulator):
    with pytest.raises(OSError, match="cannot listen"):
        Simulator(port=simulator.port).start()


def test_it_raises_refused_for_a_duplicate_added_without_grpc(simulator):
    simulator.add_user(make_user("c1"))

    with pytest.raises(Refused, match="already exists"):
        simulator.add_user(make_user("C1"))


def test_it_holds_ten_thousand_users_and_queries_twenty_thousand_counters_fast(
    client, simulator
):
    for number in range(10_000):
        simulator.add_user(make_user(f"c{number}"))
        simulator.push_traffic(f"c{number}", uplink=number, downlink=2 * number)

    started = time.monotonic()
    stats = client.query_stats("user>>>")
    elapsed = time.monotonic() - started

    assert len(stats) == 20_000
    assert stats["user>>>c9999>>>traffic>>>downlink"] == 19_998
    assert elapsed < 1.0
    assert client.count_users(TAG) == 10_000


def test_it_adds_users_over_grpc_at_a_useful_rate(client, simulator):
    users = [make_user(f"c{number}") for number in range(3000)]

    started = time.monotonic()
    failures = client.add_users(TAG, users, concurrency=16)
    elapsed = time.monotonic() - started

    assert failures == {}
    assert len(simulator.users()) == 3000
    assert elapsed < 10


def test_it_runs_from_the_command_line_and_makes_demo_traffic():
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "xray.simulator",
        "--port",
        str(port),
        "--prefix",
        "v2ray.core",
        "--demo-traffic",
        "--demo-interval",
        "0.1",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        with XrayClient(f"127.0.0.1:{port}", prefix="v2ray.core") as client:
            eventually(client.sys_stats, retry_on=Unavailable, timeout=10)
            client.add_user(TAG, make_user("c1"))
            counter = "user>>>c1>>>traffic>>>downlink"
            eventually(lambda: client.get_stats(counter), retry_on=NotFound)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)

    assert process.returncode == 0, errors
    assert f"listening on 127.0.0.1:{port}" in errors
