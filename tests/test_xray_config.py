"""xray.config: reading, changing and writing Xray's config.json, no database."""

from __future__ import annotations

import json
import os
import stat
import uuid as uuidlib
from pathlib import Path

import pytest

from xray.client import User
from xray.config import ConfigError
from xray.config import ImportedUser
from xray.config import has_comments
from xray.config import load_config
from xray.config import strip_comments
from xray.config import uuid_key
from xray.config import valid_email_key
from xray.config import vless_clients
from xray.config import with_users
from xray.config import write_config
from xray.config import xray_uuid

U1 = "6ba85179-e30d-4fc2-9a1b-000000000001"
U2 = "6ba85179-e30d-4fc2-9a1b-000000000002"
U3 = "6ba85179-e30d-4fc2-9a1b-000000000003"
FOREIGN = "0f0f0f0f-1111-4222-8333-444444444444"


def node_config() -> dict:
    """A config like a real node's: Reality inbound, API, routing, odd corners."""
    return {
        "log": {"loglevel": "warning", "access": "/var/log/xray/access.log"},
        "api": {"tag": "api", "services": ["HandlerService", "StatsService"]},
        "stats": {},
        "policy": {
            "levels": {"0": {"statsUserUplink": True, "statsUserDownlink": True}},
            "system": {"statsInboundUplink": True},
        },
        "inbounds": [
            {
                "tag": "api",
                "listen": "127.0.0.1",
                "port": 10085,
                "protocol": "dokodemo-door",
                "settings": {"address": "127.0.0.1"},
            },
            {
                "tag": "vless-in",
                "port": 8443,
                "protocol": "vless",
                "settings": {
                    "clients": [
                        {"id": FOREIGN, "email": "friend@home", "level": 0},
                        {"id": U1, "email": "c1", "flow": "xtls-rprx-vision"},
                    ],
                    "decryption": "none",
                    "fallbacks": [{"dest": 80}],
                },
                "streamSettings": {
                    "network": "tcp",
                    "security": "reality",
                    "realitySettings": {
                        "dest": "www.example.com:443",
                        "serverNames": ["www.example.com"],
                        "privateKey": "not-a-real-key",
                        "shortIds": ["", "6ba85179e30d4fc2"],
                    },
                },
                "sniffing": {"enabled": True, "destOverride": ["http", "tls"]},
            },
            {
                "tag": "other-vless",
                "port": 8444,
                "protocol": "vless",
                "settings": {
                    "clients": [{"id": U3, "email": "other@x"}],
                    "decryption": "none",
                },
            },
        ],
        "outbounds": [
            {"tag": "direct", "protocol": "freedom"},
            {"tag": "block", "protocol": "blackhole"},
        ],
        "routing": {
            "domainStrategy": "IPIfNonMatch",
            "rules": [
                {"type": "field", "inboundTag": ["api"], "outboundTag": "api"},
                {"type": "field", "ip": ["10.0.0.0/8"], "outboundTag": "block"},
            ],
        },
        "dns": {"servers": ["1.1.1.1", {"address": "8.8.8.8", "port": 53}]},
        "note": 'Ünïcödé, "quotes", a\\backslash and a tab\t',
        "big": 12345678901234567890,
        "ratio": 0.25,
    }


def ours(email: str) -> bool:
    return email.startswith("c") and email[1:].isdigit()


def dump(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(dump(node_config()) + "\n", encoding="utf-8")
    return path


# Round trips


def test_it_writes_back_an_unchanged_config_byte_for_byte(config_path: Path):
    original = config_path.read_bytes()

    write_config(config_path, load_config(config_path))

    assert config_path.read_bytes() == original


def test_it_keeps_everything_but_the_one_client_list(config_path: Path):
    before = load_config(config_path)
    users = [User("c2", U2)]

    write_config(config_path, with_users(before, "vless-in", users, ours))
    after = load_config(config_path)

    for key in before:
        if key != "inbounds":
            assert dump(after[key]) == dump(before[key]), key
    old_inbound, new_inbound = before["inbounds"][1], after["inbounds"][1]
    for key in old_inbound:
        if key != "settings":
            assert dump(new_inbound[key]) == dump(old_inbound[key]), key
    old_settings = {k: v for k, v in old_inbound["settings"].items() if k != "clients"}
    new_settings = {k: v for k, v in new_inbound["settings"].items() if k != "clients"}
    assert dump(new_settings) == dump(old_settings)
    assert [dump(i) for i in after["inbounds"][::2]] == [
        dump(i) for i in before["inbounds"][::2]
    ]
    assert config_path.read_text(encoding="utf-8").endswith("}\n")


def test_it_does_not_change_the_config_it_was_given():
    config = node_config()

    with_users(config, "vless-in", [User("c9", U2)], ours)

    assert config == node_config()


# Putting our users in


def test_it_puts_our_users_in_and_keeps_clients_that_are_not_ours():
    users = [User("c2", U2, flow="xtls-rprx-vision"), User("c3", U3, level=1)]

    config = with_users(node_config(), "vless-in", users, ours)

    clients = config["inbounds"][1]["settings"]["clients"]
    assert clients == [
        {"id": FOREIGN, "email": "friend@home", "level": 0},
        {"id": U2, "email": "c2", "flow": "xtls-rprx-vision", "level": 0},
        {"id": U3, "email": "c3", "level": 1},
    ]


def test_it_takes_out_a_client_with_one_of_our_emails_in_other_case():
    config = with_users(node_config(), "vless-in", [User("friend@home", U2)], ours)

    clients = config["inbounds"][1]["settings"]["clients"]
    assert [c["email"] for c in clients] == ["friend@home"]
    assert clients[0]["id"] == U2


def test_it_takes_out_a_foreign_client_that_holds_one_of_our_uuids():
    # Xray's user table ignores the third group: this is the same user to it.
    look_alike = FOREIGN[:14] + "9999" + FOREIGN[18:]
    users = [User("c2", look_alike)]

    config = with_users(node_config(), "vless-in", users, ours)
    kept = with_users(node_config(), "vless-in", [], ours, our_uuids=[FOREIGN])

    emails = [c["email"] for c in config["inbounds"][1]["settings"]["clients"]]
    assert emails == ["c2"]
    assert kept["inbounds"][1]["settings"]["clients"] == []


def test_it_creates_the_client_list_when_the_inbound_has_none():
    config = node_config()
    config["inbounds"][2]["settings"] = {"decryption": "none"}

    config = with_users(config, "other-vless", [User("c1", U1)], ours)

    assert config["inbounds"][2]["settings"] == {
        "decryption": "none",
        "clients": [{"id": U1, "email": "c1", "level": 0}],
    }


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("nope", "no inbound tagged 'nope'"),
        ("api", "inbound 'api' is dokodemo-door, not vless"),
    ],
)
def test_it_refuses_a_missing_or_non_vless_inbound(tag: str, problem: str):
    with pytest.raises(ConfigError) as caught:
        with_users(node_config(), tag, [], ours)

    assert caught.value.problem == problem


def test_it_refuses_two_inbounds_with_the_same_tag():
    config = node_config()
    config["inbounds"][2]["tag"] = "vless-in"

    with pytest.raises(ConfigError, match="2 inbounds are tagged 'vless-in'"):
        with_users(config, "vless-in", [], ours)


# Reading users


def test_it_lists_the_clients_of_every_vless_inbound_or_of_one():
    everyone = vless_clients(node_config())
    one = vless_clients(node_config(), "other-vless")

    assert everyone == [
        ImportedUser("friend@home", FOREIGN, "", 0, "vless-in"),
        ImportedUser("c1", U1, "xtls-rprx-vision", 0, "vless-in"),
        ImportedUser("other@x", U3, "", 0, "other-vless"),
    ]
    assert one == [everyone[2]]


def test_it_reads_keys_ignoring_case_with_the_last_one_winning_like_the_daemon():
    config = {
        "Inbounds": [
            {
                "Tag": "x",
                "Protocol": "VLESS",
                "Settings": {
                    "Clients": [{"id": "bad", "ID": U1.upper(), "Email": "a@b"}]
                },
            }
        ]
    }

    assert vless_clients(config) == [ImportedUser("a@b", U1, "", 0, "x")]
    written = with_users(config, "x", [User("c2", U2)], ours)
    assert written["Inbounds"][0]["Settings"]["Clients"][-1]["email"] == "c2"
    assert "clients" not in written["Inbounds"][0]["Settings"]


def test_it_says_what_is_wrong_with_a_client_it_cannot_use():
    config = node_config()
    config["inbounds"][2]["settings"]["clients"] = [
        {"id": "x" * 31, "email": "long"},
        {"id": 7, "email": "number"},
        {"id": U2, "email": ["list"]},
        "not an object",
    ]

    problems = [u.problem for u in vless_clients(config, "other-vless")]

    assert problems == [
        f"id {'x' * 31!r} is not a UUID",
        "id is not text",
        "email is not text",
        "the entry is not an object",
    ]


def test_it_reads_ids_the_way_xray_does():
    assert xray_uuid(U1.upper()) == U1
    assert xray_uuid(U1.replace("-", "")) == U1
    assert xray_uuid("not-hex-" * 4 + "abcd") is None
    assert xray_uuid("") is None
    assert xray_uuid("x" * 31) is None
    # 1 to 30 bytes: a UUIDv5 of the text in the all-zero namespace.
    assert xray_uuid("alice-password") == "e2d1f49b-30a1-5eab-b900-87c4e1fbb1f1"
    assert uuidlib.UUID(xray_uuid("пароль")).version == 5


def test_it_keys_uuids_the_way_xray_s_user_table_does():
    assert uuid_key(U1) == uuid_key(U1[:14] + "ffff" + U1[18:])
    assert uuid_key(U1) != uuid_key(U2)


def test_it_reads_a_flow_of_none_as_no_flow():
    config = node_config()
    config["inbounds"][2]["settings"]["clients"][0]["flow"] = "none"

    assert vless_clients(config, "other-vless")[0].flow == ""


# Comments


def test_it_ignores_comments_like_the_daemon_does(tmp_path: Path):
    path = tmp_path / "commented.json"
    path.write_text(
        "// the node\n"
        "{\n"
        '  "log": {"loglevel": "warning"}, # hash comment\n'
        '  /* a block\n     over lines */ "stats": {},\n'
        '  "url": "http://example.com/#top"\n'
        "}\n",
        encoding="utf-8",
    )

    assert load_config(path) == {
        "log": {"loglevel": "warning"},
        "stats": {},
        "url": "http://example.com/#top",
    }
    assert has_comments(path)


def test_it_leaves_text_inside_strings_alone():
    text = '{"a": "x // y /* z */ # w", "b": "say \\"//\\""}'

    assert strip_comments(text) == text


def test_it_points_at_the_right_line_of_a_commented_file(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{\n/* one\ntwo */\n"a": 1,\n"b": oops\n}\n', encoding="utf-8")

    with pytest.raises(ConfigError, match="invalid JSON at line 5"):
        load_config(path)


# Errors


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[1, 2]", "the top level must be a JSON object"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": "\xff"}', "not UTF-8 text (bad byte at offset 7)"),
        (b'{"a": 1,}', "invalid JSON at line 1: Expecting property name"),
        (b"", "invalid JSON at line 1: Expecting value"),
    ],
)
def test_it_names_the_file_and_the_problem(tmp_path: Path, content: bytes, problem):
    path = tmp_path / "config.json"
    path.write_bytes(content)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.path == str(path)
    assert problem in str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")


def test_it_says_when_the_file_is_missing(tmp_path: Path):
    with pytest.raises(ConfigError, match="missing.json: no such file"):
        load_config(tmp_path / "missing.json")


# Writing


def test_it_leaves_the_old_file_whole_when_the_write_fails(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
):
    original = config_path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ConfigError, match="cannot write it: No space left"):
        write_config(config_path, {"new": True})

    assert config_path.read_bytes() == original
    assert os.listdir(config_path.parent) == ["config.json"]


def test_it_keeps_the_file_mode(config_path: Path):
    config_path.chmod(0o640)

    write_config(config_path, {"changed": 1})

    assert stat.S_IMODE(config_path.stat().st_mode) == 0o640
    assert config_path.read_text(encoding="utf-8") == '{\n  "changed": 1\n}\n'


def test_it_gives_a_new_file_the_usual_mode(tmp_path: Path):
    umask = os.umask(0o022)
    try:
        write_config(tmp_path / "new.json", {})
    finally:
        os.umask(umask)

    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644


def test_it_replaces_the_file_a_symlink_points_at(tmp_path: Path):
    real = tmp_path / "real.json"
    real.write_text("{}\n", encoding="utf-8")
    link = tmp_path / "config.json"
    link.symlink_to(real)

    write_config(link, {"a": 1})

    assert link.is_symlink()
    assert json.loads(real.read_text(encoding="utf-8")) == {"a": 1}


# Email keys


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        ("", "empty"),
        ("x" * 65, "longer than 64"),
        ("алиса", "non-ASCII"),
        ("a\x00b", "control"),
        ("a\tb", "control"),
        ("a b", "whitespace"),
        ("Alice", "uppercase"),
        ("a>>>b", ">>>"),
    ],
)
def test_it_refuses_unsafe_email_keys(email: str, problem: str):
    assert problem in (valid_email_key(email) or "")


@pytest.mark.parametrize("email", ["c1", "alice@example.com", "x" * 64, "a>b"])
def test_it_accepts_safe_email_keys(email: str):
    assert valid_email_key(email) is None
