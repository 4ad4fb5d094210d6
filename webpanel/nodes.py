"""Nodes: the Xray daemons we manage, and one shared gRPC client for each."""

from __future__ import annotations

import threading

from peewee import Expression

from webpanel.models import Client
from webpanel.models import ClientNode
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
    wanted = {
        "api_address": settings.xray_api,
        "flavor": settings.xray_flavor,
        "inbound_tag": settings.xray_inbound_tag,
    }
    links = {
        "flow": settings.xray_flow,
        "public_host": settings.public_host,
        "public_port": settings.public_port,
        "reality_sni": settings.reality_sni,
        "reality_public_key": settings.reality_public_key,
        "reality_short_id": settings.reality_short_id,
        "reality_fingerprint": settings.reality_fingerprint,
    }
    node = Node.get_or_none(Node.name == "main")
    if node is None:
        return Node.create(name="main", **wanted, **links)
    moved = any(getattr(node, field) != value for field, value in wanted.items())
    for field, value in {**wanted, **links}.items():
        setattr(node, field, value)
    if moved:
        reset_node_state(node)
    node.save()
    return node


def reset_node_state(node: Node) -> None:
    """A new address or tag: a daemon that holds none of our users yet."""
    node.in_sync = False
    node.seen_uptime = node.poll_uptime = None
    # Counters are kept per address: the new one's are its own.


def nodes_of(client: Client) -> list[Node]:
    """The nodes a client is on: every node, or the ones chosen for it."""
    if client.all_nodes:
        return list(Node.select().order_by(Node.id))
    return list(
        Node.select()
        .join(ClientNode)
        .where(ClientNode.client == client.id)
        .order_by(Node.id)
    )


def on_node(node: Node) -> Expression:
    """Clients that belong on a node (whatever their status)."""
    chosen = ClientNode.select(ClientNode.client).where(ClientNode.node == node.id)
    return (Client.all_nodes == True) | Client.id.in_(chosen)
