"""Our clients and config.json: importing from it, writing into it, booting from it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.daemons import V2RAY_BIN
from tests.daemons import ContentServer
from tests.daemons import FetchFailed
from tests.daemons import V2RayProxyClient
from tests.daemons import V2RayServer
from tests.daemons import require_v2ray
from tests.daemons import when_online
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import Removal
from webpanel.models import State
from webpanel.models import db
from webpanel.services import clients as client_service
from webpanel.services import sync
from webpanel.services.xray_config import import_from_config
from webpanel.services.xray_config import write_users_to_config
from webpanel.xray_config_cli import register_xray_config_cli
from xray.client import User
from xray.config import ConfigError
from xray.config import load_config
from xray.config import write_config
from xray.simulator import Simulator

U1 = "6ba85179-e30d-4fc2-9a1b-000000000001"
U2 = "6ba85179-e30d-4fc2-9a1b-000000000002"
U3 = "6ba85179-e30d-4fc2-9a1b-000000000003"
U4 = "6ba85179-e30d-4fc2-9a1b-000000000004"
U5 = "6ba85179-e30d-4fc2-9a1b-000000000005"


def vless_config(*clients: dict, tag: str = "vless-in") -> dict:
    return {
        "log": {"loglevel": "warning"},
        "inbounds": [
            {
                "tag": tag,
                "port": 8443,
                "protocol": "vless",
                "settings": {"clients": list(clients), "decryption": "none"},
            },
            {"tag": "socks", "port": 1080, "protocol": "socks"},
        ],
        "outbounds": [{"protocol": "freedom"}],
    }


def config_file(tmp_path: Path, *clients: dict, name: str = "config.json") -> Path:
    path = tmp_path / name
    write_config(path, vless_config(*clients))
    return path


def with_cli(app: Flask) -> FlaskCliRunner:
    if "xray-config" not in app.cli.commands:
        register_xray_config_cli(app)
    return app.test_cli_runner()


@pytest.fixture
def cli(app: Flask) -> FlaskCliRunner:
    return with_cli(app)


def emails() -> list[str]:
    return [c.email for c in Client.select().order_by(Client.id)]


# Importing


def test_it_makes_clients_of_the_users_and_adds_them_to_xray(
    app: Flask, simulator: Simulator, tmp_path: Path
):
    path = config_file(
        tmp_path,
        {"id": U1.upper(), "email": "alice@example.com", "flow": "xtls-rprx-vision"},
        {"id": U2, "email": "bob", "level": 0},
    )

    report = import_from_config(path)

    assert [c.name for c in report.created] == ["alice@example.com", "bob"]
    assert report.skipped == []
    alice = Client.get(Client.email == "alice@example.com")
    assert alice.uuid == U1 and alice.flow == "xtls-rprx-vision"
    assert alice.status == "active" and not alice.pending
    assert alice.data_limit is None and alice.expire_at is None
    assert set(simulator.users()) == {"alice@example.com", "bob"}
    assert simulator.users()["alice@example.com"].uuid == U1


def test_it_skips_everything_when_the_same_file_is_imported_again(
    app: Flask, tmp_path: Path
):
    path = config_file(
        tmp_path, {"id": U1, "email": "alice"}, {"id": U2, "email": "Bob"}
    )
    import_from_config(path)

    again = import_from_config(path)

    assert again.created == []
    assert [s.reason for s in again.skipped] == [
        "its UUID is already used by alice",
        "its UUID is already used by c1",
    ]
    assert Client.select().count() == 2


def test_it_gives_unsafe_emails_a_new_key_and_removes_the_old_one(
    app: Flask, simulator: Simulator, tmp_path: Path
):
    # What the daemon holds after booting from that file.
    for email, uuid in (("Alice", U1), ("c7", U2), ("с пробелом", U3)):
        simulator.add_user(User(email, uuid))
    path = config_file(
        tmp_path,
        {"id": U1, "email": "Alice"},
        {"id": U2, "email": "c7"},
        {"id": U3, "email": "с пробелом"},
    )

    report = import_from_config(path)

    assert [(c.source_email, c.email) for c in report.created] == [
        ("Alice", "c8"),
        ("c7", "c9"),
        ("с пробелом", "c10"),
    ]
    assert set(simulator.users()) == {"c8", "c9", "c10"}
    assert simulator.push_traffic("c9", 1, 1) == "c9"
    assert simulator.push_traffic("c8", 100, 200) == "c8"
    assert Removal.select().count() == 0
    assert Client.get(Client.email == "c8").name == "Alice"


def test_it_keeps_tombstones_for_the_old_emails_while_the_node_is_down(
    app: Flask, simulator: Simulator, tmp_path: Path
):
    path = config_file(tmp_path, {"id": U1, "email": "Alice"})
    simulator.stop()

    import_from_config(path)

    client = Client.get()
    assert client.email == "c1" and client.pending
    assert [(r.node.name, r.email) for r in Removal.select()] == [("main", "Alice")]

    simulator.start()
    when_online(lambda: sync.recover_node(Node.get(), force=True))
    assert set(simulator.users()) == {"c1"}
    assert Removal.select().count() == 0


def test_it_never_hands_out_a_c_key_that_the_file_used(app: Flask, tmp_path: Path):
    path = config_file(
        tmp_path, {"id": U1, "email": "Alice"}, {"id": U2, "email": "C41"}
    )

    import_from_config(path)
    later = client_service.create_client("later")

    assert emails() == ["c42", "c43", "c44"]
    assert later.email == "c44"


def test_it_imports_the_first_of_two_users_sharing_a_uuid(
    app: Flask, simulator: Simulator, tmp_path: Path
):
    path = config_file(
        tmp_path,
        {"id": U1, "email": "first"},
        {"id": U1.upper(), "email": "second"},
        # Xray's user table ignores the UUID's third group: the same user.
        {"id": U1[:14] + "0000" + U1[18:], "email": "third"},
    )

    report = import_from_config(path)

    assert [c.email for c in report.created] == ["first"]
    assert [(s.email, s.reason) for s in report.skipped] == [
        ("second", "its UUID is already used by first"),
        ("third", "its UUID is already used by first"),
    ]
    assert set(simulator.users()) == {"first"}


def test_it_skips_an_email_a_client_already_has(app: Flask, tmp_path: Path):
    existing = client_service.create_client("existing")
    path = config_file(
        tmp_path,
        {"id": U1, "email": existing.email.upper()},
        {"id": U2, "email": "new"},
        {"id": U3, "email": "NEW"},
    )

    report = import_from_config(path)

    assert [c.email for c in report.created] == ["new"]
    assert [s.reason for s in report.skipped] == [
        f"its email is already the key of a client ({existing.email})",
        "its email is already the key of a client (new)",
    ]


def test_it_names_clients_without_clashing(app: Flask, tmp_path: Path):
    client_service.create_client("Bob")
    path = config_file(
        tmp_path,
        {"id": U1, "email": "bob"},
        {"id": U2, "email": ""},
        {"id": U3, "email": "b" * 64},
        {"id": U4},
    )

    report = import_from_config(path)

    assert [c.name for c in report.created] == [
        "bob (2)",
        "imported 1",
        "b" * 64,
        "imported 2",
    ]
    # The long email fits Xray but not our key column.
    assert [c.email for c in report.created] == ["bob", "c2", "c3", "c4"]


def test_it_names_a_user_with_one_of_our_keys_after_it(app: Flask, tmp_path: Path):
    # Our own config again: a name can't look like an email key, so "c7" is
    # named "imported c7" (its key is a fresh one, past c7).
    report = import_from_config(config_file(tmp_path, {"id": U5, "email": "c7"}))

    [client] = report.created
    assert client.name == "imported c7"
    assert client.email == "c8"


def test_it_skips_users_it_cannot_read_and_says_why(app: Flask, tmp_path: Path):
    path = config_file(
        tmp_path,
        {"id": "", "email": "no-id"},
        {"id": U1, "email": "ok", "level": "high"},
    )

    report = import_from_config(path)

    assert report.created == []
    assert [s.reason for s in report.skipped] == [
        "id '' is not a UUID",
        "level is not a number",
    ]


def test_it_imports_one_inbound_when_given_a_tag(app: Flask, tmp_path: Path):
    config = vless_config({"id": U1, "email": "main"})
    config["inbounds"].append(
        {
            "tag": "second",
            "protocol": "vless",
            "settings": {"clients": [{"id": U2, "email": "side"}]},
        }
    )
    path = tmp_path / "config.json"
    write_config(path, config)

    report = import_from_config(path, tag="second")

    assert [(c.email, c.tag) for c in report.created] == [("side", "second")]


def test_it_saves_nothing_when_the_file_is_bad(app: Flask, tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text('{"inbounds": [', encoding="utf-8")
    good = config_file(tmp_path, {"id": U1, "email": "a"}, name="good.json")

    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        import_from_config(path)
    with pytest.raises(ConfigError, match="good.json: no inbound tagged 'nope'"):
        import_from_config(good, tag="nope")

    assert Client.select().count() == 0
    assert State.select().count() == 0


def test_it_saves_nothing_when_the_import_fails_half_way(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = config_file(
        tmp_path, {"id": U1, "email": "Alice"}, {"id": U2, "email": "bob"}
    )
    real_create = Client.create
    made = []

    def create_then_fail(**fields):
        if made:
            raise RuntimeError("disk full")
        made.append(real_create(**fields))
        return made[-1]

    monkeypatch.setattr(Client, "create", create_then_fail)
    with pytest.raises(RuntimeError):
        import_from_config(path)

    assert made and Client.select().count() == 0
    assert Removal.select().count() == 0
    assert State.select().count() == 0


# Writing our users into the file


def test_it_writes_the_clients_that_should_be_in_xray_and_keeps_the_others(
    app: Flask, tmp_path: Path
):
    kept = client_service.create_client("kept")
    gone = client_service.create_client("gone")
    client_service.disable_client(gone)
    path = config_file(
        tmp_path,
        {"id": U1, "email": "friend"},
        {"id": U2, "email": gone.email},
        {"id": U3, "email": "c99"},
    )

    count = write_users_to_config(path, "vless-in")

    clients = load_config(path)["inbounds"][0]["settings"]["clients"]
    assert count == 1
    assert clients == [
        {"id": U1, "email": "friend"},
        {"id": kept.uuid, "email": kept.email, "flow": kept.flow, "level": 0},
    ]


def test_it_drops_the_old_email_of_a_rekeyed_client_when_writing(
    app: Flask, tmp_path: Path
):
    path = config_file(tmp_path, {"id": U1, "email": "Alice"}, {"id": U2})
    import_from_config(path)

    write_users_to_config(path, "vless-in")

    clients = load_config(path)["inbounds"][0]["settings"]["clients"]
    assert [(c["email"], c["id"]) for c in clients] == [("c1", U1), ("c2", U2)]


def test_it_refuses_to_write_into_an_inbound_that_is_not_there(
    app: Flask, tmp_path: Path
):
    path = config_file(tmp_path)
    before = path.read_bytes()

    with pytest.raises(ConfigError, match="config.json: inbound 'socks' is socks"):
        write_users_to_config(path, "socks")

    assert path.read_bytes() == before


# The command line


def test_it_imports_from_the_command_line_as_json(cli: FlaskCliRunner, tmp_path: Path):
    path = config_file(tmp_path, {"id": U1, "email": "Alice"}, {"id": U1})

    result = cli.invoke(args=["xray-config", "import", str(path), "--json"])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["created"] == [
        {
            "name": "Alice",
            "email": "c1",
            "uuid": U1,
            "source_email": "Alice",
            "tag": "vless-in",
            "rekeyed": True,
        }
    ]
    assert shown["skipped"][0]["reason"] == "its UUID is already used by c1"


def test_it_imports_and_writes_from_the_command_line(
    cli: FlaskCliRunner, tmp_path: Path
):
    source = config_file(tmp_path, {"id": U1, "email": "alice"}, name="old.json")
    target = config_file(tmp_path, {"id": U2, "email": "friend"})

    imported = cli.invoke(args=["xray-config", "import", str(source)])
    written = cli.invoke(args=["xray-config", "write", str(target)])

    assert imported.exit_code == 0, imported.output
    assert "created\talice\talice" in imported.output
    assert "1 created, 0 skipped" in imported.output
    assert written.exit_code == 0, written.output
    assert "inbound vless-in now holds our 1 users" in written.output
    clients = load_config(target)["inbounds"][0]["settings"]["clients"]
    assert [c["email"] for c in clients] == ["friend", "alice"]


def test_it_says_what_is_wrong_without_a_traceback(cli: FlaskCliRunner, tmp_path: Path):
    missing = tmp_path / "missing.json"
    commented = tmp_path / "commented.json"
    commented.write_text("// node\n" + json.dumps(vless_config()), encoding="utf-8")

    failed = cli.invoke(args=["xray-config", "write", str(missing)])
    wrong_tag = cli.invoke(args=["xray-config", "import", str(commented), "--tag", "x"])
    noted = cli.invoke(args=["xray-config", "write", str(commented)])

    assert failed.exit_code == 1
    assert f"{missing}: no such file" in failed.output
    assert "Traceback" not in failed.output
    assert "no inbound tagged 'x'" in wrong_tag.output
    assert noted.exit_code == 0
    assert "comments the file had are not kept" in noted.output


# Booting Debian's v2ray from a written file


class ConfigFileServer(V2RayServer):
    """A v2ray node that boots from a config.json on disk, as a real one does.

    The file starts as the usual test node's config; whatever is in it when
    the server starts is what the daemon gets.
    """

    name = "v2ray server from config.json"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.config_path = self.workdir / "node.json"
        write_config(self.config_path, super().config())

    def config(self) -> dict:
        return load_config(self.config_path)


@pytest.fixture
def v2ray_server(tmp_path: Path) -> Iterator[ConfigFileServer]:
    """Replaces tests.daemons' fixture: not started, so the test writes first."""
    require_v2ray()
    server = ConfigFileServer(tmp_path / "v2ray-server")
    yield server
    server.kill()


@pytest.fixture
def v2ray_app(
    make_app: Callable[..., Flask], v2ray_server: ConfigFileServer
) -> Iterator[Flask]:
    app = make_app(v2ray_server.api_address, XRAY_FLAVOR="v2ray", XRAY_FLOW="")
    with app.app_context(), db.connection_context():
        yield app


def test_it_writes_a_file_debian_s_v2ray_boots_with_our_users(
    v2ray_app: Flask,
    v2ray_server: ConfigFileServer,
    v2ray_proxy: Callable[[str], V2RayProxyClient],
    content_server: ContentServer,
):
    # The daemon is down: the clients are saved, pending, and only the
    # file can bring them in at boot.
    alice = client_service.create_client("Алиса")
    banned = client_service.create_client("banned")
    client_service.disable_client(banned)
    config = load_config(v2ray_server.config_path)
    friend = {"id": U1, "email": "friend", "level": 0}
    config["inbounds"][1]["settings"]["clients"] = [friend]
    write_config(v2ray_server.config_path, config)

    path = str(v2ray_server.config_path)
    result = with_cli(v2ray_app).invoke(args=["xray-config", "write", path])
    assert result.exit_code == 0, result.output
    checked = subprocess.run(
        [V2RAY_BIN, "-test", "-config", path],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    v2ray_server.start()

    url = content_server.url(1000)
    assert len(v2ray_proxy(alice.uuid).fetch(url)) == 1000
    assert len(v2ray_proxy(U1).fetch(url)) == 1000
    with pytest.raises(FetchFailed):
        v2ray_proxy(banned.uuid).fetch(url, timeout=5)


def test_it_counts_only_traffic_after_the_import(app, simulator, tmp_path):
    """Xray's counters of an imported user hold its past: that is not new usage."""
    from webpanel.models import Client
    from webpanel.models import Node
    from webpanel.services import accounting
    from webpanel.services.xray_config import import_from_config
    from xray.client import User

    uuid = "22222222-2222-4222-8222-222222222222"
    simulator.add_user(User(email="old-friend", uuid=uuid))
    simulator.push_traffic("old-friend", downlink=5000)
    path = tmp_path / "config.json"
    path.write_text(
        '{"inbounds": [{"tag": "vless-in", "protocol": "vless", "settings": '
        '{"clients": [{"id": "' + uuid + '", "email": "old-friend"}], '
        '"decryption": "none"}}]}'
    )

    import_from_config(path, actor="test")
    simulator.push_traffic("old-friend", downlink=70)
    accounting.poll_node(Node.get())

    assert Client.get(Client.email == "old-friend").downlink == 70
