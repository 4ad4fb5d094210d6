"""The subscription URL hands each app a body and headers it reads as meant."""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.parse
from datetime import UTC
from datetime import datetime

import jsonschema_rs
import pytest
import segno
import yaml
from flask import Flask
from flask.testing import FlaskClient

from tests import app_schemas
from webpanel import subscriptions
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import db
from webpanel.services import subscription_formats as formats
from webpanel.services.clients import GB
from webpanel.services.clients import create_client
from webpanel.services.clients import disable_client
from webpanel.services.clients import enforce_limits
from webpanel.subscriptions import TokenBucket

TRICKY = "🚀 Иван #1 & 50% | a b"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0"


@pytest.fixture
def sub(app: Flask) -> FlaskClient:
    if "subscriptions" not in app.blueprints:
        app.register_blueprint(subscriptions.bp)
    return app.test_client()


@pytest.fixture
def member(app: Flask) -> Client:
    return create_client(TRICKY)


def fetch(sub: FlaskClient, client: Client, agent: str = "curl/8.5", **kwargs):
    query = kwargs.pop("query", "")
    headers = {"User-Agent": agent, **kwargs.pop("headers", {})}
    return sub.get(f"/sub/{client.sub_token}{query}", headers=headers, **kwargs)


def decoded_links(body: bytes) -> list[str]:
    return base64.b64decode(body, validate=True).decode().split("\n")


def set_node(**fields) -> None:
    Node.update(**fields).execute()


def test_it_hands_curl_padded_base64_of_the_links(sub, member):
    response = fetch(sub, member)

    assert response.status_code == 200
    body = response.get_data()
    assert b"\n" not in body and len(body) % 4 == 0
    (link,) = decoded_links(body)
    assert link.startswith(f"vless://{member.uuid}@vpn.example.com:8443?")
    assert urllib.parse.unquote(link.partition("#")[2]) == TRICKY


def test_it_keeps_a_tricky_remark_whole_in_every_format(sub, member):
    clash = yaml.safe_load(fetch(sub, member, query="?format=clash").get_data())
    box = json.loads(fetch(sub, member, query="?format=singbox").get_data())
    xray = json.loads(fetch(sub, member, query="?format=xray").get_data())

    assert clash["proxies"][0]["name"] == TRICKY
    assert clash["proxy-groups"][0]["proxies"] == [TRICKY]
    assert [o["tag"] for o in box["outbounds"] if o["type"] == "vless"] == [TRICKY]
    assert xray[0]["remarks"] == TRICKY


def test_it_brackets_an_ipv6_host_in_links_and_not_in_yaml_or_json(sub, member):
    set_node(public_host="2001:db8::1")

    (link,) = decoded_links(fetch(sub, member).get_data())
    clash = yaml.safe_load(fetch(sub, member, query="?format=clash").get_data())
    box = json.loads(fetch(sub, member, query="?format=singbox").get_data())
    xray = json.loads(fetch(sub, member, query="?format=xray").get_data())

    assert "@[2001:db8::1]:8443?" in link
    assert clash["proxies"][0]["server"] == "2001:db8::1"
    assert box["outbounds"][1]["server"] == "2001:db8::1"
    assert xray[0]["outbounds"][0]["settings"]["vnext"][0]["address"] == "2001:db8::1"


@pytest.mark.parametrize("short_id", ["1e10", "0123", "12345678", "00"])
def test_it_quotes_a_numeric_looking_short_id_in_yaml(sub, member, short_id):
    set_node(reality_short_id=short_id)

    text = fetch(sub, member, query="?format=clash").get_data(as_text=True)
    proxy = yaml.safe_load(text)["proxies"][0]

    assert proxy["reality-opts"]["short-id"] == short_id
    assert isinstance(proxy["reality-opts"]["short-id"], str)
    assert f'short-id: "{short_id}"' in text


def test_it_writes_the_mihomo_reality_fields(sub, member):
    body = fetch(sub, member, query="?format=clash").get_data()
    document = yaml.safe_load(body)
    proxy = document["proxies"][0]

    assert proxy["type"] == "vless"
    assert proxy["port"] == 8443 and isinstance(proxy["port"], int)
    assert proxy["uuid"] == member.uuid
    assert proxy["network"] == "tcp"
    assert proxy["tls"] is True and proxy["udp"] is True
    assert proxy["servername"] == "www.example.com"
    assert proxy["client-fingerprint"] == "chrome"
    assert proxy["flow"] == "xtls-rprx-vision"
    assert proxy["reality-opts"]["public-key"] == Node.get().reality_public_key
    assert document["rules"] == ["MATCH,Proxy"]
    assert document["proxy-groups"][0]["type"] == "select"


@pytest.mark.parametrize("name", ["Proxy", "REJECT", "direct", "DIRECT", "proxy"])
def test_it_keeps_a_client_named_like_a_built_in_from_breaking_the_profile(
    sub, make_app, simulator, name
):
    # Two nodes: the client's two proxies need names unlike each other too.
    Node.create(name="edge", api_address=simulator.address, public_host="e.example")
    made = create_client(name)

    clash = yaml.safe_load(fetch(sub, made, query="?format=clash").get_data())
    proxies = [p["name"] for p in clash["proxies"]]
    groups = [g["name"] for g in clash["proxy-groups"]]
    reserved = {n.casefold() for n in formats.CLASH_RESERVED}
    assert len({n.casefold() for n in proxies + groups}) == len(proxies + groups)
    assert not {n.casefold() for n in proxies} & reserved
    assert clash["proxy-groups"][0]["proxies"] == proxies

    box = json.loads(fetch(sub, made, query="?format=singbox").get_data())
    tags = [o["tag"] for o in box["outbounds"]]
    assert len(tags) == len(set(tags)) == 4  # proxy, two nodes, direct
    selector = box["outbounds"][0]
    assert selector["outbounds"] == tags[1:3]


@pytest.mark.parametrize(
    ("fmt", "schema"), [("singbox", app_schemas.SINGBOX), ("xray", app_schemas.XRAY)]
)
def test_it_writes_configs_the_apps_schema_takes_for_every_kind_of_client(
    sub, app, simulator, fmt, schema
):
    # Two nodes, one on IPv6, a flow-less one, and a blocked client's placeholder.
    Node.create(
        name="edge",
        api_address=simulator.address,
        public_host="2001:db8::7",
        flow="",
        reality_sni="www.example.org",
        reality_public_key=Node.get().reality_public_key,
        reality_short_id="",
        reality_fingerprint="firefox",
    )
    member = create_client(TRICKY)
    blocked = create_client("Blocked")
    disable_client(blocked)

    validator = jsonschema_rs.validator_for(schema)
    for client in (member, blocked):
        config = json.loads(fetch(sub, client, query=f"?format={fmt}").get_data())
        errors = [error.message for error in validator.iter_errors(config)]
        assert errors == [], (client.name, errors)


def test_its_app_schemas_catch_a_misspelt_or_removed_field(sub, member):
    box = json.loads(fetch(sub, member, query="?format=singbox").get_data())
    box["inbounds"][0]["inet4_address"] = "172.19.0.1/30"  # removed in sing-box 1.12
    assert not jsonschema_rs.validator_for(app_schemas.SINGBOX).is_valid(box)
    (config,) = json.loads(fetch(sub, member, query="?format=xray").get_data())
    config["outbounds"][0]["streamSettings"]["realitySettings"]["shortID"] = "ab"
    assert not jsonschema_rs.validator_for(app_schemas.XRAY).is_valid([config])


def test_it_writes_the_current_sing_box_schema(sub, member):
    box = json.loads(fetch(sub, member, query="?format=singbox").get_data())
    (vless,) = [o for o in box["outbounds"] if o["type"] == "vless"]

    assert vless["server_port"] == 8443
    assert vless["uuid"] == member.uuid
    assert vless["flow"] == "xtls-rprx-vision"
    assert vless["tls"] == {
        "enabled": True,
        "server_name": "www.example.com",
        "utls": {"enabled": True, "fingerprint": "chrome"},
        "reality": {
            "enabled": True,
            "public_key": Node.get().reality_public_key,
            "short_id": "6ba85179e30d4fc2",
        },
    }
    text = json.dumps(box)
    for legacy in ("inet4_address", "geoip", "geosite", '"dns-out"', '"sniff":'):
        assert legacy not in text
    assert box["route"]["final"] == "proxy"


def test_it_writes_an_xray_config_per_link(sub, member):
    (config,) = json.loads(fetch(sub, member, query="?format=xray").get_data())
    outbound = config["outbounds"][0]

    assert outbound["protocol"] == "vless"
    assert outbound["streamSettings"]["security"] == "reality"
    reality = outbound["streamSettings"]["realitySettings"]
    assert reality["shortId"] == "6ba85179e30d4fc2"
    assert reality["serverName"] == "www.example.com"
    assert outbound["settings"]["vnext"][0]["users"][0]["id"] == member.uuid


def test_it_sends_the_userinfo_header_in_the_exact_form(sub, member):
    member.uplink, member.downlink = 1536, 2048
    member.data_limit = 10 * 1024**3
    member.expire_at = datetime(2030, 1, 2, 3, 4, 5)
    member.save()

    response = fetch(sub, member)

    expire = int(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    assert response.headers["subscription-userinfo"] == (
        f"upload=1536; download=2048; total=10737418240; expire={expire}"
    )


def test_it_says_zero_for_unlimited_and_never(sub, member):
    response = fetch(sub, member, query="?format=clash")

    assert response.headers["subscription-userinfo"] == (
        "upload=0; download=0; total=0; expire=0"
    )


def test_it_sends_the_profile_headers(sub, member):
    response = fetch(sub, member)

    title = response.headers["profile-title"]
    assert title.startswith("base64:")
    assert base64.b64decode(title.removeprefix("base64:")).decode() == TRICKY
    assert response.headers["profile-update-interval"] == "12"
    disposition = response.headers["content-disposition"]
    found = re.fullmatch(
        r'attachment; filename="[A-Za-z0-9._-]+"; filename\*=UTF-8\'\'(\S+)',
        disposition,
    )
    assert found, disposition
    assert urllib.parse.unquote(found.group(1)) == TRICKY  # the whole name
    assert "support-url" not in response.headers  # none set
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["profile-web-page-url"].endswith(f"/sub/{member.sub_token}")


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("v2rayNG/1.10.5", "links"),
        ("Happ/3.2.1", "links"),
        ("Streisand 1.6", "links"),
        ("HiddifyNext/2.5.7 (android)", "links"),
        ("Wget/1.21", "links"),
        ("ClashMetaForAndroid/2.11.5.Meta", "clash"),
        ("clash-verge/v2.2.3", "clash"),
        ("FlClash/v0.8.80 clash-verge Platform/android", "clash"),
        ("mihomo.party/v1.7.6", "clash"),
        ("Stash/2.4.5 Clash/1.9.0", "clash"),
        ("NekoBox/Android/1.3.9 (Prefer ClashMeta Format)", "clash"),
        ("SFA/1.11.9 (242; sing-box 1.11.9)", "singbox"),
        ("SFI (sing-box 1.12.4; language en_US)", "singbox"),
        ("SFM/1.12.0", "singbox"),
    ],
)
def test_it_picks_the_format_by_user_agent(sub, member, agent, expected):
    response = fetch(sub, member, agent=agent)

    assert response.status_code == 200
    assert formats.format_for(agent, "*/*") == expected
    body = response.get_data()
    if expected == "links":
        assert decoded_links(body)[0].startswith("vless://")
    elif expected == "clash":
        assert yaml.safe_load(body)["proxies"][0]["type"] == "vless"
    else:
        assert json.loads(body)["outbounds"][1]["type"] == "vless"


def test_it_lets_the_format_parameter_override_the_agent(sub, member):
    response = fetch(sub, member, agent="SFA/1.11", query="?format=links")

    assert decoded_links(response.get_data())[0].startswith("vless://")


def test_it_answers_404_alike_for_unknown_and_revoked_tokens(sub, member):
    old = member.sub_token
    unknown = sub.get("/sub/not-a-token-we-know", headers={"User-Agent": "curl/8"})
    Client.update(sub_token="replaced-token-value").execute()
    revoked = sub.get(f"/sub/{old}", headers={"User-Agent": "curl/8"})

    assert unknown.status_code == revoked.status_code == 404
    assert unknown.get_data() == revoked.get_data()
    assert unknown.mimetype == "text/plain"


def test_it_refuses_an_unknown_format_with_a_message(sub, member):
    response = fetch(sub, member, query="?format=yaml")

    assert response.status_code == 400
    assert "links, clash, singbox, xray" in response.get_data(as_text=True)


def test_it_answers_304_when_the_etag_matches(sub, member):
    first = fetch(sub, member, query="?format=clash")
    etag = first.headers["ETag"]
    again = fetch(sub, member, query="?format=clash", headers={"If-None-Match": etag})
    other = fetch(sub, member, query="?format=links", headers={"If-None-Match": etag})

    assert first.status_code == 200
    assert again.status_code == 304 and again.get_data() == b""
    assert other.status_code == 200


def test_it_answers_429_with_retry_after_when_a_token_asks_too_often(
    sub, member, monkeypatch
):
    monkeypatch.setattr(subscriptions, "limiter", TokenBucket(capacity=3, rate=0.1))

    codes = [fetch(sub, member).status_code for _ in range(4)]
    last = fetch(sub, member)

    assert codes == [200, 200, 200, 429]
    assert last.status_code == 429
    assert 1 <= int(last.headers["Retry-After"]) <= 10


def test_it_limits_each_token_on_its_own():
    bucket = TokenBucket(capacity=2, rate=1)

    assert [bucket.take("a"), bucket.take("a")] == [0, 0]
    assert bucket.take("a") > 0
    assert bucket.take("b") == 0


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("disabled", "disabled"),
        ("limited", "data limit reached"),
        ("expired", "expired"),
    ],
)
def test_it_hands_a_blocked_client_a_placeholder_saying_why(
    sub, member, status, reason
):
    Client.update(status=status).where(Client.id == member.id).execute()

    (link,) = decoded_links(fetch(sub, member).get_data())
    clash = yaml.safe_load(fetch(sub, member, query="?format=clash").get_data())
    box = json.loads(fetch(sub, member, query="?format=singbox").get_data())
    xray = json.loads(fetch(sub, member, query="?format=xray").get_data())

    assert link.startswith(f"vless://{formats.PLACEHOLDER_UUID}@0.0.0.0:1?")
    assert urllib.parse.unquote(link.partition("#")[2]).endswith(reason)
    assert member.uuid not in json.dumps([clash, box, xray])
    assert clash["proxies"][0]["server"] == "0.0.0.0"
    assert clash["proxies"][0]["name"].endswith(reason)
    assert box["outbounds"][1]["server_port"] == 1
    assert xray[0]["remarks"].endswith(reason)


def test_it_shows_a_browser_the_page_with_qr_and_import_buttons(sub, member):
    headers = {"Accept": "text/html,application/xhtml+xml", "Accept-Language": "en"}
    response = fetch(sub, member, agent=BROWSER, headers=headers)
    html = response.get_data(as_text=True)

    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert f"/sub/{member.sub_token}/qr/0.svg" in html
    url = urllib.parse.quote(f"http://localhost/sub/{member.sub_token}", safe="")
    for deep_link in (
        f"v2rayng://install-config?url={url}",
        f"clash://install-config?url={url}",
        f"sing-box://import-remote-profile?url={url}",
        f"happ://add/http://localhost/sub/{member.sub_token}",
        f"hiddify://import/http://localhost/sub/{member.sub_token}",
        f"streisand://import/http://localhost/sub/{member.sub_token}#",
        f"v2raytun://import/http://localhost/sub/{member.sub_token}",
    ):
        assert deep_link in html
    assert "Expires" in html
    assert "(no limit)" in html

    # The first QR code is the subscription URL: scanned, the app keeps it fresh.
    assert f"/sub/{member.sub_token}/qr.svg" in html
    url_qr = sub.get(f"/sub/{member.sub_token}/qr.svg")
    expected = io.BytesIO()
    segno.make(f"http://localhost/sub/{member.sub_token}", error="m").save(
        expected, kind="svg", scale=4, border=2, xmldecl=False
    )
    assert url_qr.mimetype == "image/svg+xml"
    assert url_qr.get_data() == expected.getvalue()
    qr = sub.get(f"/sub/{member.sub_token}/qr/0.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml"
    assert sub.get(f"/sub/{member.sub_token}/qr/1.svg").status_code == 404


def test_it_speaks_russian_to_a_browser_that_prefers_it(sub, member):
    headers = {"Accept": "text/html", "Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"}
    html = fetch(sub, member, agent=BROWSER, headers=headers).get_data(as_text=True)

    assert '<html lang="ru">' in html
    assert "Подписка" in html
    assert "0 Б (без ограничения)" in html


def test_it_words_each_state_on_the_page(sub, app):
    headers = {"Accept": "text/html", "Accept-Language": "ru"}
    held = create_client("Ждёт", days=7, on_hold=True)
    over = create_client("Много", data_limit=GB)
    Client.update(uplink=2 * GB).where(Client.id == over.id).execute()
    enforce_limits()

    held_page = fetch(sub, held, agent=BROWSER, headers=headers).get_data(as_text=True)
    assert "7 дн. с первого подключения" in held_page
    over_page = fetch(sub, over, agent=BROWSER, headers=headers).get_data(as_text=True)
    assert "Рабочих ссылок нет: лимит трафика исчерпан." in over_page
    assert "2.00 ГБ из 1.00 ГБ" in over_page


def test_it_shows_no_link_on_the_page_of_a_blocked_client(sub, member):
    Client.update(status="expired").where(Client.id == member.id).execute()
    headers = {"Accept": "text/html"}
    html = fetch(sub, member, agent=BROWSER, headers=headers).get_data(as_text=True)

    assert "vless://" not in html
    assert "expired" in html
    assert sub.get(f"/sub/{member.sub_token}/qr/0.svg").status_code == 404


def test_it_shows_the_subscription_url_on_the_client_page(signed_in):
    from webpanel.services import clients as service

    client = service.create_client("subscriber")

    html = signed_in.get(f"/clients/{client.id}").get_data(as_text=True)

    assert f"http://localhost/sub/{client.sub_token}" in html


@pytest.mark.parametrize(
    ("setting", "sent"),
    [
        ("https://t.me/example_support", "https://t.me/example_support"),
        (
            "https://поддержка.рф/чат",
            "https://xn--80ahaefyxhn.xn--p1ai/%D1%87%D0%B0%D1%82",
        ),
    ],
)
def test_it_sends_the_support_url_when_one_is_set(make_app, simulator, setting, sent):
    app = make_app(
        simulator.address, SUPPORT_URL=setting, PANEL_PUBLIC_URL="https://панель.рф"
    )
    with app.app_context(), db.connection_context():
        member = create_client("Боб")
        response = app.test_client().get(
            f"/sub/{member.sub_token}", headers={"User-Agent": "Happ/3.2.1"}
        )
    assert response.status_code == 200
    assert response.headers["support-url"] == sent
    assert response.headers["profile-web-page-url"].startswith("https://xn--")
