"""Settings: read in one place, validated at start, named in every error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webpanel import create_app
from webpanel.settings import ROOT
from webpanel.settings import SettingsError
from webpanel.settings import load_settings
from webpanel.settings import mask


def test_it_uses_the_documented_defaults(tmp_path: Path):
    settings = load_settings({}, tmp_path)

    assert settings.xray_api == "127.0.0.1:10085"
    assert settings.xray_flavor == "xray" and settings.xray_prefix == "xray"
    assert settings.xray_inbound_tag == "vless-in"
    assert settings.xray_flow == "xtls-rprx-vision"
    assert (settings.panel_host, settings.panel_port) == ("127.0.0.1", 8000)
    assert (settings.poll_seconds, settings.recover_seconds) == (10, 30)
    assert settings.public_port == 8443 and settings.reality_fingerprint == "chrome"
    assert settings.database_url == f"sqlite:///{tmp_path / 'infinity.db'}"


def test_it_generates_a_secret_key_once_and_keeps_it(tmp_path: Path):
    first = load_settings({}, tmp_path).secret_key
    second = load_settings({}, tmp_path).secret_key

    assert len(first) >= 64 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_it_maps_the_v2ray_flavor_to_its_proto_prefix(tmp_path: Path):
    settings = load_settings({"XRAY_FLAVOR": "v2ray", "XRAY_FLOW": ""}, tmp_path)

    assert settings.xray_prefix == "v2ray.core" and settings.xray_flow == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PANEL_PORT", "eighty"),
        ("PANEL_PORT", "70000"),
        ("PUBLIC_PORT", "0"),
        ("XRAY_API", "localhost"),
        ("XRAY_FLAVOR", "sing-box"),
        ("XRAY_FLOW", "xtls-rprx-direct"),
        ("POLL_SECONDS", "often"),
        ("RECOVER_SECONDS", "0"),
        ("REALITY_SHORT_ID", "xyz"),
        ("PANEL_TIMEZONE", "Mars/Olympus"),
        ("DATABASE_URL", "mysql://x"),
        ("PANEL_PUBLIC_URL", "panel.example.com"),
        ("SUPPORT_URL", "ftp://files.example.com"),
        ("SUPPORT_URL", "http://[::1"),
        ("SUPPORT_URL", "https://user:secret@help.example.com"),
    ],
)
def test_it_refuses_a_malformed_setting_naming_it(
    tmp_path: Path, name: str, value: str
):
    with pytest.raises(SettingsError, match=f"^{name} "):
        load_settings({name: value}, tmp_path)


def test_it_keeps_urls_in_the_ascii_form_that_headers_need(tmp_path: Path):
    settings = load_settings(
        {
            "SUPPORT_URL": "https://поддержка.рф/чат?start=a b",
            "PANEL_PUBLIC_URL": "https://панель.рф:8443/",
        },
        tmp_path,
    )

    assert settings.support_url == (
        "https://xn--80ahaefyxhn.xn--p1ai/%D1%87%D0%B0%D1%82?start=a%20b"
    )
    assert settings.panel_public_url == "https://xn--80aksgi6f.xn--p1ai:8443"
    assert settings.support_url.isascii()


def test_it_refuses_to_start_the_panel_on_a_bad_setting(tmp_path: Path):
    with pytest.raises(SettingsError, match="PANEL_PORT"):
        create_app({"PANEL_PORT": "x"}, instance_path=tmp_path)


def test_it_reads_a_relative_sqlite_url_from_the_project(tmp_path: Path):
    settings = load_settings({"DATABASE_URL": "sqlite:///instance/x.db"}, tmp_path)

    assert settings.database_url == f"sqlite:///{ROOT / 'instance/x.db'}"


def test_it_masks_secrets():
    assert mask("") == "(not set)"
    assert mask("123456:ABCDEFGHIJKLMNOP") == "1234…OP"
    assert "ABCDEFGH" not in mask("123456:ABCDEFGHIJKLMNOP")


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def read_names() -> set[str]:
    """Every name the code reads: `read.kind("NAME"` or `.get("NAME"`."""
    names: set[str] = set()
    paths = [ROOT / "webpanel" / "settings.py", ROOT / "deploy" / "gunicorn.conf.py"]
    paths += sorted((ROOT / "plugins").rglob("*.py"))  # plugins read their own
    for path in paths:
        names |= set(
            re.findall(r'(?:read\.\w+|\.get)\(\s*"([A-Z][A-Z0-9_]+)"', path.read_text())
        )
    return names


def test_it_documents_every_setting_it_reads():
    assert len(read_names()) > 15
    assert read_names() - documented() == set()


def test_it_reads_every_setting_it_documents():
    assert documented() - read_names() == set()


def test_it_documents_each_setting_with_a_comment():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            above = lines[number - 1]
            assert above.startswith("#") or re.match(r"^[A-Z][A-Z0-9_]+=", above), line


def test_it_keeps_real_values_out_of_the_example():
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith(("SECRET_KEY=", "REALITY_PUBLIC_KEY=", "PUBLIC_HOST=")):
            assert line.endswith("="), line
