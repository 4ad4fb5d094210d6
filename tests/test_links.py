"""Share links that the apps import as they were meant."""

import base64
import urllib.parse

import pytest

from xray.links import reality_public_key
from xray.links import vless_link

UUID = "0f3a2d4e-9b7c-4c1e-8f2a-5d6e7f809a1b"


def link(**overrides) -> str:
    fields = {
        "uuid": UUID,
        "host": "vpn.example.com",
        "port": 8443,
        "sni": "www.example.org",
        "public_key": "Zm9vYmFyYmF6cXV4LXB1YmxpYy1rZXktYmFzZTY0dXJs",
        "short_id": "6ba85179e30d4fc2",
        "remark": "home",
    }
    fields.update(overrides)
    return vless_link(**fields)


def test_it_builds_the_reality_link_in_the_documented_order():
    assert link() == (
        f"vless://{UUID}@vpn.example.com:8443?type=tcp&security=reality"
        "&pbk=Zm9vYmFyYmF6cXV4LXB1YmxpYy1rZXktYmFzZTY0dXJs"
        "&sni=www.example.org&fp=chrome&sid=6ba85179e30d4fc2"
        "&flow=xtls-rprx-vision&encryption=none#home"
    )


@pytest.mark.parametrize(
    "remark",
    [
        "Иван Петров",
        "🚀 fast & free",
        "50% off | #1 + more",
        "a/b?c=d",
        '"quoted"',
        "  spaced  out  ",
    ],
)
def test_it_percent_encodes_the_remark_so_it_round_trips(remark):
    text = link(remark=remark)
    _, sep, fragment = text.partition("#")

    assert sep == "#"
    assert urllib.parse.unquote(fragment, errors="strict") == remark
    assert text.count("#") == 1
    assert "+" not in text
    assert " " not in text
    assert '"' not in text


def test_it_encodes_spaces_as_percent_20_never_plus():
    assert link(remark="a b+c").endswith("#a%20b%2Bc")


def test_it_puts_an_ipv6_host_in_brackets():
    assert link(host="2001:db8::1").startswith(f"vless://{UUID}@[2001:db8::1]:8443?")
    assert link(host="[2001:db8::1]").startswith(f"vless://{UUID}@[2001:db8::1]:")


def test_it_leaves_ipv4_and_names_unbracketed():
    assert "@203.0.113.7:8443?" in link(host="203.0.113.7")
    assert "@vpn.example.com:8443?" in link()


def test_it_leaves_the_flow_out_when_empty():
    text = link(flow="")

    assert "flow=" not in text
    assert "&sid=6ba85179e30d4fc2&encryption=none#" in text


def test_it_takes_the_fingerprint():
    assert "&fp=firefox&" in link(fingerprint="firefox")


def b64url(hex_bytes: str) -> str:
    raw = bytes.fromhex(hex_bytes)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_it_derives_the_reality_public_key_from_the_private_key():
    # RFC 7748, section 6.1: Alice's key pair.
    private = b64url("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    public = b64url("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")

    assert reality_public_key(private) == public
    assert reality_public_key(private + "=") == public
    assert "=" not in public


@pytest.mark.parametrize("private", ["", "c2hvcnQ", "not base64 at all!"])
def test_it_rejects_a_private_key_that_is_not_32_base64url_bytes(private):
    with pytest.raises(ValueError):
        reality_public_key(private)
