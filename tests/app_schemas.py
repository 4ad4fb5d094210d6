"""JSON Schemas of the client configs we hand out, as the apps read them.

Written from sing-box's configuration reference (1.12 and later) and Xray's
(outbound VLESS with REALITY): field names, types and allowed values. Every
object is closed, so a misspelt or removed field (sing-box 1.12 dropped the
TUN `inet4_address`, geoip/geosite and the `dns` outbound) fails the check.
"""

from __future__ import annotations

PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
UUID = {
    "type": "string",
    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}
FLOW = {"enum": ["xtls-rprx-vision"]}
FINGERPRINT = {
    "enum": [
        "chrome",
        "firefox",
        "edge",
        "safari",
        "360",
        "qq",
        "ios",
        "android",
        "random",
        "randomized",
    ]
}
PUBLIC_KEY = {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}  # X25519, base64url
SHORT_ID = {"type": "string", "pattern": "^([0-9a-f]{2}){0,8}$"}
TEXT = {"type": "string", "minLength": 1}


def closed(required: dict, optional: dict | None = None) -> dict:
    """An object with exactly these fields (the optional ones may be missing)."""
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


def kind(name: str) -> dict:
    return {"const": name}


SINGBOX_VLESS = closed(
    {
        "type": kind("vless"),
        "tag": TEXT,
        "server": TEXT,
        "server_port": PORT,
        "uuid": UUID,
        "tls": closed(
            {
                "enabled": {"const": True},
                "server_name": TEXT,
                "utls": closed(
                    {"enabled": {"const": True}, "fingerprint": FINGERPRINT}
                ),
                "reality": closed(
                    {
                        "enabled": {"const": True},
                        "public_key": PUBLIC_KEY,
                        "short_id": SHORT_ID,
                    }
                ),
            }
        ),
    },
    {"flow": FLOW},
)

SINGBOX = closed(
    {
        "log": closed({"level": {"enum": ["trace", "debug", "info", "warn", "error"]}}),
        "dns": closed(
            {
                "servers": {
                    "type": "array",
                    "items": closed(
                        {
                            "type": {
                                "enum": ["local", "udp", "tcp", "tls", "https", "quic"]
                            },
                            "tag": TEXT,
                        },
                        {"server": TEXT, "server_port": PORT, "detour": TEXT},
                    ),
                },
                "final": TEXT,
            }
        ),
        "inbounds": {
            "type": "array",
            "items": closed(
                {
                    "type": kind("tun"),
                    "tag": TEXT,
                    "address": {
                        "type": "array",
                        "items": {"type": "string", "pattern": "/"},
                    },
                    "auto_route": {"type": "boolean"},
                },
                {"strict_route": {"type": "boolean"}, "stack": TEXT},
            ),
        },
        "outbounds": {
            "type": "array",
            "items": {
                "oneOf": [
                    closed(
                        {
                            "type": kind("selector"),
                            "tag": TEXT,
                            "outbounds": {
                                "type": "array",
                                "items": TEXT,
                                "minItems": 1,
                            },
                        },
                        {"default": TEXT},
                    ),
                    SINGBOX_VLESS,
                    closed({"type": kind("direct"), "tag": TEXT}),
                ]
            },
        },
        "route": closed(
            {
                "rules": {
                    "type": "array",
                    "items": closed(
                        {},
                        {
                            "action": {
                                "enum": ["route", "sniff", "hijack-dns", "reject"]
                            },
                            "protocol": TEXT,
                            "ip_is_private": {"type": "boolean"},
                            "outbound": TEXT,
                        },
                    ),
                },
                "final": TEXT,
            },
            {
                "auto_detect_interface": {"type": "boolean"},
                "default_domain_resolver": closed({"server": TEXT}),
            },
        ),
    }
)

XRAY_VLESS = closed(
    {
        "tag": TEXT,
        "protocol": kind("vless"),
        "settings": closed(
            {
                "vnext": {
                    "type": "array",
                    "minItems": 1,
                    "items": closed(
                        {
                            "address": TEXT,
                            "port": PORT,
                            "users": {
                                "type": "array",
                                "minItems": 1,
                                "items": closed(
                                    {"id": UUID, "encryption": kind("none")},
                                    {"flow": FLOW},
                                ),
                            },
                        }
                    ),
                }
            }
        ),
        "streamSettings": closed(
            {
                "network": kind("tcp"),
                "security": kind("reality"),
                "realitySettings": closed(
                    {
                        "serverName": TEXT,
                        "fingerprint": FINGERPRINT,
                        "publicKey": PUBLIC_KEY,
                        "shortId": SHORT_ID,
                    },
                    {"spiderX": {"type": "string"}},
                ),
            }
        ),
    }
)

XRAY = {
    "type": "array",
    "minItems": 1,
    "items": closed(
        {
            "remarks": {"type": "string"},
            "log": closed(
                {"loglevel": {"enum": ["debug", "info", "warning", "error", "none"]}}
            ),
            "inbounds": {
                "type": "array",
                "items": closed(
                    {
                        "tag": TEXT,
                        "listen": TEXT,
                        "port": PORT,
                        "protocol": {"enum": ["socks", "http"]},
                        "settings": closed(
                            {}, {"udp": {"type": "boolean"}, "auth": TEXT}
                        ),
                    }
                ),
            },
            "outbounds": {
                "type": "array",
                "items": {
                    "oneOf": [
                        XRAY_VLESS,
                        closed(
                            {
                                "tag": TEXT,
                                "protocol": {"enum": ["freedom", "blackhole"]},
                            }
                        ),
                    ]
                },
            },
        },
        {"routing": {"type": "object"}},
    ),
}
