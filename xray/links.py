"""Share links for VLESS + Reality, and the Reality public key."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import urllib.parse


def vless_link(
    *,
    uuid: str,
    host: str,
    port: int,
    sni: str,
    public_key: str,
    short_id: str,
    fingerprint: str = "chrome",
    flow: str = "xtls-rprx-vision",
    remark: str,
) -> str:
    """A `vless://` link that the common apps import.

    Values and the remark are percent-encoded UTF-8 with %20 for a space and
    never a `+`; an IPv6 host goes in brackets; an empty flow is left out.
    """
    params = [
        ("type", "tcp"),
        ("security", "reality"),
        ("pbk", public_key),
        ("sni", sni),
        ("fp", fingerprint),
        ("sid", short_id),
    ]
    if flow:
        params.append(("flow", flow))
    params.append(("encryption", "none"))

    query = "&".join(f"{name}={_quote(value)}" for name, value in params)
    return f"vless://{_quote(uuid)}@{_host(host)}:{int(port)}?{query}#{_quote(remark)}"


def _quote(value: str) -> str:
    # safe="" also encodes "/", "#", "&", "+" and "%"; spaces become %20.
    return urllib.parse.quote(value, safe="")


def _host(host: str) -> str:
    bare = host.strip("[]")
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return host
    return f"[{bare}]" if address.version == 6 else bare


def reality_public_key(private_key: str) -> str:
    """The X25519 public key for a Reality private key, both base64url.

    Accepts the private key with or without padding, as `xray x25519`
    prints it; returns the public key without padding.
    """
    # Imported here: cryptography costs the panel ~6 MB it needs only now.
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    try:
        raw = base64.urlsafe_b64decode(private_key + "=" * (-len(private_key) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("the private key is not base64url") from None
    if len(raw) != 32:
        raise ValueError("the private key must be 32 bytes")

    public = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes_raw()
    return base64.urlsafe_b64encode(public).rstrip(b"=").decode("ascii")
