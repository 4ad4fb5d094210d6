"""What a client is handed: a vless:// link for each node it is on."""

from __future__ import annotations

from flask import has_request_context
from flask import request

from webpanel.models import Client
from webpanel.models import Node
from webpanel.nodes import nodes_of
from webpanel.settings import current_settings
from xray.links import vless_link


def node_link(client: Client, node: Node, *, several: bool = False) -> str | None:
    """The Reality share link for one node, or None until its public host is set.

    With several nodes, the remark names the node so apps can tell them apart.
    """
    if not node.public_host:
        return None
    remark = f"{client.name} · {node.name}" if several else client.name
    return vless_link(
        uuid=client.uuid,
        host=node.public_host,
        port=node.public_port,
        sni=node.reality_sni,
        public_key=node.reality_public_key,
        short_id=node.reality_short_id,
        fingerprint=node.reality_fingerprint,
        flow=client.flow if node.flow else "",
        remark=remark,
    )


def client_links(client: Client) -> list[tuple[Node, str]]:
    """(node, link) for every node of the client that hands out links."""
    nodes = nodes_of(client)
    several = len(nodes) > 1
    found = [(node, node_link(client, node, several=several)) for node in nodes]
    return [(node, link) for node, link in found if link]


def client_link(client: Client) -> str | None:
    """The first of the client's links: what a single-node setup hands out."""
    links = client_links(client)
    return links[0][1] if links else None


def subscription_url(client: Client) -> str | None:
    """The client's subscription URL.

    Built on PANEL_PUBLIC_URL when it is set (the bot, the CLI and jobs have
    no request to go by); otherwise on the address the current request came
    to; None outside a request without the setting.
    """
    path = f"/sub/{client.sub_token}"
    base = current_settings().panel_public_url
    if base:
        return base + path
    if not has_request_context():
        return None
    return request.host_url.rstrip("/") + path
