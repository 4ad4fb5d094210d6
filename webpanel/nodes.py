"""Nodes: the Xray daemons we manage, and one shared gRPC client for each."""

from __future__ import annotations

import threading

from webpanel.models import Counter
from webpanel.models import Node
from webpanel.settings import FLAVORS
from webpanel.settings import Settings
from xray.client import XrayClient

_lock = threading.Lock()
_gateways: dict[tuple[str, str, float], XrayClient] = {}


def gateway(node: Node, timeout: float = 5.0) -> XrayClient:
    """The process-wide client for a node: one channel, shared by every thread."""
    key = (node.api_address, FLAVORS[node.flavor], timeout)
    with _lock:
        client = _gateways.get(key)
        if client is None:
            client = XrayClient(key[0], prefix=key[1], timeout=timeout)
            _gateways[key] = client
        return client


def close_gateways() -> None:
    with _lock:
        for client in _gateways.values():
            client.close()
        _gateways.clear()


def ensure_default_node(settings: Settings) -> Node:
    """The node named in the settings, created or updated to match them."""
    node = Node.get_or_none(Node.name == "main")
    if node is None:
        return Node.create(
            name="main",
            api_address=settings.xray_api,
            flavor=settings.xray_flavor,
            inbound_tag=settings.xray_inbound_tag,
        )
    wanted = {
        "api_address": settings.xray_api,
        "flavor": settings.xray_flavor,
        "inbound_tag": settings.xray_inbound_tag,
    }
    if any(getattr(node, field) != value for field, value in wanted.items()):
        for field, value in wanted.items():
            setattr(node, field, value)
        node.in_sync = False  # a new address or tag has none of our users yet
        node.seen_uptime = node.poll_uptime = None
        node.save()
        # The old daemon's counters mean nothing on the new one.
        Counter.delete().where(Counter.node == node).execute()
    return node
