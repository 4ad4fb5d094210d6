"""Subscription bodies and headers: vless:// links in, what each app reads out.

Pure functions, no Flask and no database: the blueprint picks the format and
hands over the links; everything an app parses is built here.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from xray.links import vless_link

FORMATS = ("links", "clash", "singbox", "xray")
UPDATE_INTERVAL_HOURS = 12

# A client that may not connect still gets a subscription that parses: one
# link to an address that goes nowhere, whose remark says why.
PLACEHOLDER_HOST = "0.0.0.0"
PLACEHOLDER_PORT = 1
PLACEHOLDER_UUID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_KEY = "A" * 43  # 32 zero bytes: well formed, matches no server
REASONS = {
    "disabled": "disabled",
    "limited": "data limit reached",
    "expired": "expired",
}

# User-Agent prefixes, compared casefolded; the first match wins.
CLASH_AGENTS = (
    "clashmetaforandroid/",
    "clash-verge",
    "clash.meta",
    "clashx",
    "clash",
    "flclash/",
    "mihomo",
    "stash",
    "nekobox/",
    "nekoray/",
)
SINGBOX_AGENTS = ("sfa/", "sfi", "sfm", "sft", "karing")


@dataclass(frozen=True)
class RealityLink:
    """The fields of one vless:// Reality link."""

    uuid: str
    host: str  # without brackets
    port: int
    sni: str
    public_key: str
    short_id: str
    fingerprint: str
    flow: str
    remark: str


def parse_link(link: str) -> RealityLink:
    """Read back a link that xray.links.vless_link built."""
    parts = urllib.parse.urlsplit(link)
    if parts.scheme != "vless" or not parts.hostname or parts.port is None:
        raise ValueError("not a vless:// link")

    # Split by hand: parse_qsl would read a literal "+" as a space.
    query = {}
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        query[name] = urllib.parse.unquote(value)

    return RealityLink(
        uuid=urllib.parse.unquote(parts.username or ""),
        host=parts.hostname,
        port=parts.port,
        sni=query.get("sni", ""),
        public_key=query.get("pbk", ""),
        short_id=query.get("sid", ""),
        fingerprint=query.get("fp", "chrome"),
        flow=query.get("flow", ""),
        remark=urllib.parse.unquote(parts.fragment),
    )


def placeholder_link(name: str, status: str) -> str:
    """A link that parses everywhere, leads nowhere, and names the reason."""
    reason = REASONS.get(status, status)
    return vless_link(
        uuid=PLACEHOLDER_UUID,
        host=PLACEHOLDER_HOST,
        port=PLACEHOLDER_PORT,
        sni="invalid",
        public_key=PLACEHOLDER_KEY,
        short_id="",
        flow="",
        remark=f"{name}: {reason}",
    )


def format_for(user_agent: str, accept: str) -> str:
    """The format an app asks for by its User-Agent; "html" for a browser."""
    agent = user_agent.strip().casefold()
    if agent.startswith("mozilla/") and "text/html" in accept:
        return "html"
    if agent.startswith(SINGBOX_AGENTS):
        return "singbox"
    if agent.startswith(CLASH_AGENTS):
        return "clash"
    # v2rayNG, Happ, Streisand, V2Box, Hiddify, curl and anything unknown.
    return "links"


def render(fmt: str, links: Sequence[str]) -> tuple[str, str]:
    """(body, mimetype) of the links in one of FORMATS."""
    if fmt == "links":
        return links_body(links), "text/plain"
    if fmt == "clash":
        return clash_body(links), "text/yaml"
    if fmt == "singbox":
        return singbox_body(links), "application/json"
    if fmt == "xray":
        return xray_body(links), "application/json"
    raise ValueError(f"unknown format {fmt!r}")


def links_body(links: Sequence[str]) -> str:
    """Base64 (standard, padded, one line) of the links, one per line."""
    return base64.b64encode("\n".join(links).encode()).decode("ascii")


# Names the profile itself uses, or the app keeps for itself (Mihomo's
# built-in proxies and groups): a client named so must not take them.
CLASH_GROUP = "Proxy"
CLASH_RESERVED = (
    CLASH_GROUP,
    "DIRECT",
    "REJECT",
    "REJECT-DROP",
    "PASS",
    "PASS-RULE",
    "COMPATIBLE",
    "GLOBAL",
    "INTERNAL-HTTP",
)
SINGBOX_RESERVED = ("proxy", "direct")


def _unique_names(links: Sequence[RealityLink], reserved: Sequence[str]) -> list[str]:
    # Clash and sing-box refer to proxies by name: two alike would clash, and
    # a name taken by the profile or the app makes it refuse the whole file.
    # Compared in any case, to be safe with apps that fold it.
    taken = {name.casefold() for name in reserved}
    names: list[str] = []
    for link in links:
        name = link.remark or link.host
        candidate, n = name, 2
        while candidate.casefold() in taken:
            candidate, n = f"{name} ({n})", n + 1
        taken.add(candidate.casefold())
        names.append(candidate)
    return names


class _Quoted(str):
    """A YAML value written double-quoted whatever it looks like."""


class _ClashDumper(yaml.SafeDumper):
    pass


_ClashDumper.add_representer(
    _Quoted,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", str(value), style='"'
    ),
)


def clash_body(links: Sequence[str]) -> str:
    """Mihomo YAML: the proxies, one select group over them, one rule.

    Every string value is double-quoted: Mihomo reads YAML 1.2, where an
    unquoted short id such as 1e10 or a name such as 0123 is a number.
    """
    parsed = [parse_link(link) for link in links]
    names = _unique_names(parsed, CLASH_RESERVED)
    proxies = []
    for name, link in zip(names, parsed, strict=True):
        proxy = {
            "name": _Quoted(name),
            "type": _Quoted("vless"),
            "server": _Quoted(link.host),
            "port": link.port,
            "uuid": _Quoted(link.uuid),
            "network": _Quoted("tcp"),
            "udp": True,
            "tls": True,
            "servername": _Quoted(link.sni),
            "client-fingerprint": _Quoted(link.fingerprint),
            "reality-opts": {
                "public-key": _Quoted(link.public_key),
                "short-id": _Quoted(link.short_id),
            },
        }
        if link.flow:
            proxy["flow"] = _Quoted(link.flow)
        proxies.append(proxy)

    group = CLASH_GROUP
    document = {
        "mode": "rule",
        "proxies": proxies,
        "proxy-groups": [
            {
                "name": _Quoted(group),
                "type": _Quoted("select"),
                "proxies": [_Quoted(name) for name in names] or [_Quoted("DIRECT")],
            }
        ],
        "rules": [_Quoted(f"MATCH,{group}")],
    }
    return yaml.dump(
        document,
        Dumper=_ClashDumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=1000,
    )


def singbox_body(links: Sequence[str]) -> str:
    """A sing-box profile in the current schema (1.12 and later).

    A TUN inbound with `address`, DNS servers with `type`, sniffing and DNS
    hijack as route rule actions: none of the fields removed by 1.12-1.14.
    """
    parsed = [parse_link(link) for link in links]
    names = _unique_names(parsed, SINGBOX_RESERVED)
    outbounds: list[dict] = [
        {
            "type": "selector",
            "tag": "proxy",
            "outbounds": names or ["direct"],
        }
    ]
    for name, link in zip(names, parsed, strict=True):
        outbound = {
            "type": "vless",
            "tag": name,
            "server": link.host,
            "server_port": link.port,
            "uuid": link.uuid,
            "tls": {
                "enabled": True,
                "server_name": link.sni,
                "utls": {"enabled": True, "fingerprint": link.fingerprint},
                "reality": {
                    "enabled": True,
                    "public_key": link.public_key,
                    "short_id": link.short_id,
                },
            },
        }
        if link.flow:
            outbound["flow"] = link.flow
        outbounds.append(outbound)
    outbounds.append({"type": "direct", "tag": "direct"})

    profile = {
        "log": {"level": "warn"},
        "dns": {
            "servers": [
                {"type": "tls", "tag": "dns-remote", "server": "1.1.1.1"},
                {"type": "local", "tag": "dns-local"},
            ],
            "final": "dns-remote",
        },
        "inbounds": [
            {
                "type": "tun",
                "tag": "tun-in",
                "address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"],
                "auto_route": True,
                "strict_route": True,
            }
        ],
        "outbounds": outbounds,
        "route": {
            "rules": [
                {"action": "sniff"},
                {"protocol": "dns", "action": "hijack-dns"},
                {"ip_is_private": True, "outbound": "direct"},
            ],
            "final": "proxy",
            "auto_detect_interface": True,
            "default_domain_resolver": {"server": "dns-local"},
        },
    }
    return json.dumps(profile, ensure_ascii=False, indent=2)


def xray_body(links: Sequence[str]) -> str:
    """A JSON array of complete Xray client configs, one per link.

    v2rayNG lists each element as a server named by its `remarks`; a config
    per node keeps the choice of node with the user, as the links do.
    """
    configs = []
    for link in map(parse_link, links):
        user = {"id": link.uuid, "encryption": "none"}
        if link.flow:
            user["flow"] = link.flow
        configs.append(
            {
                "remarks": link.remark,
                "log": {"loglevel": "warning"},
                "inbounds": [
                    {
                        "tag": "socks",
                        "listen": "127.0.0.1",
                        "port": 10808,
                        "protocol": "socks",
                        "settings": {"udp": True},
                    }
                ],
                "outbounds": [
                    {
                        "tag": "proxy",
                        "protocol": "vless",
                        "settings": {
                            "vnext": [
                                {
                                    "address": link.host,
                                    "port": link.port,
                                    "users": [user],
                                }
                            ]
                        },
                        "streamSettings": {
                            "network": "tcp",
                            "security": "reality",
                            "realitySettings": {
                                "serverName": link.sni,
                                "fingerprint": link.fingerprint,
                                "publicKey": link.public_key,
                                "shortId": link.short_id,
                            },
                        },
                    },
                    {"tag": "direct", "protocol": "freedom"},
                ],
            }
        )
    return json.dumps(configs, ensure_ascii=False, indent=2)


def userinfo(upload: int, download: int, total: int, expire: int) -> str:
    """The subscription-userinfo value: four integer keys, no trailing ";"."""
    fields = {"upload": upload, "download": download, "total": total, "expire": expire}
    return "; ".join(f"{key}={max(0, int(value))}" for key, value in fields.items())


def ascii_filename(name: str) -> str:
    """A name safe inside a quoted content-disposition filename."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._")
    return safe[:64] or "subscription"


def profile_headers(
    name: str, *, upload: int, download: int, total: int, expire: int
) -> dict[str, str]:
    """The headers the apps read next to any subscription body."""
    title = base64.b64encode(name.encode()).decode("ascii")
    return {
        "subscription-userinfo": userinfo(upload, download, total, expire),
        "profile-title": f"base64:{title}",
        "profile-update-interval": str(UPDATE_INTERVAL_HOURS),
        # The quoted ASCII name is what Hiddify reads; filename* keeps the
        # whole name (RFC 6266) for the apps that read it.
        "content-disposition": f'attachment; filename="{ascii_filename(name)}"; '
        f"filename*=UTF-8''{urllib.parse.quote(name, safe='')}",
    }
