"""Nodes as rows: adding and removing daemons, and choosing a client's nodes."""

from __future__ import annotations

import logging
import re

from peewee import IntegrityError

from webpanel.models import Client
from webpanel.models import ClientNode
from webpanel.models import Node
from webpanel.models import db
from webpanel.services import audit
from webpanel.services import sync
from webpanel.services.inputs import FieldError
from webpanel.settings import FLAVORS
from webpanel.settings import FLOWS
from webpanel.settings import current_settings
from webpanel.signals import client_changed

log = logging.getLogger(__name__)

NODE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
ADDRESS = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})")
SHORT_ID = re.compile(r"(?:[0-9a-f]{2}){0,8}")


class NodeError(FieldError):
    """Bad input for a node."""


def add_node(
    name: str,
    api_address: str,
    *,
    flavor: str = "xray",
    inbound_tag: str = "vless-in",
    flow: str = "xtls-rprx-vision",
    public_host: str = "",
    public_port: int = 8443,
    reality_sni: str = "",
    reality_public_key: str = "",
    reality_short_id: str = "",
    reality_fingerprint: str = "chrome",
) -> Node:
    """Save a node; the recovery job then puts every client of it in place."""
    fields = {
        "name": name.strip().lower(),
        "api_address": api_address.strip(),
        "flavor": flavor,
        "inbound_tag": inbound_tag.strip() or "vless-in",
        "flow": flow,
        "public_host": public_host.strip(),
        "public_port": public_port,
        "reality_sni": reality_sni.strip(),
        "reality_public_key": reality_public_key.strip(),
        "reality_short_id": reality_short_id.strip().lower(),
        "reality_fingerprint": reality_fingerprint.strip() or "chrome",
    }
    _check(fields)
    try:
        with db.atomic():
            node = Node.create(**fields)
    except IntegrityError:
        raise NodeError({"name": "A node with this name already exists."}) from None
    log.info("node %s added at %s", node.name, node.api_address)
    return node


def _check(fields: dict) -> None:
    errors = {}
    if not NODE_NAME.fullmatch(fields["name"]):
        errors["name"] = "Name: 1-32 lowercase letters, digits or dashes."
    match = ADDRESS.fullmatch(fields["api_address"])
    if not match or not 1 <= int(match.group(2)) <= 65535:
        errors["api_address"] = "API address must look like HOST:PORT."
    if fields["flavor"] not in FLAVORS:
        errors["flavor"] = f"Flavor must be one of: {', '.join(FLAVORS)}."
    if fields["flow"] not in FLOWS:
        errors["flow"] = "Flow must be xtls-rprx-vision or empty."
    if not 1 <= fields["public_port"] <= 65535:
        errors["public_port"] = "Public port must be 1-65535."
    if not SHORT_ID.fullmatch(fields["reality_short_id"]):
        errors["reality_short_id"] = "Short id: up to 16 hex digits, an even count."
    if errors:
        raise NodeError(errors)


def remove_node(node: Node) -> None:
    """Forget a node. The settings' own node can't go: it comes from `.env`."""
    if node.name == "main":
        raise NodeError(
            {"name": "The main node comes from the settings (.env); change it there."}
        )
    with db.atomic():
        node.delete_instance()
    log.info("node %s removed", node.name)


def find_node(name: str) -> Node | None:
    return Node.get_or_none(Node.name == name.strip().lower())


def set_client_nodes(
    client: Client, nodes: list[Node] | None, *, actor: str = "system"
) -> Client:
    """Put a client on every node (None) or on the nodes given."""
    if nodes is not None and not nodes:
        raise NodeError({"nodes": "Choose at least one node, or all."})
    with db.atomic():
        ClientNode.delete().where(ClientNode.client == client.id).execute()
        client.all_nodes = nodes is None
        client.save(only=[Client.all_nodes])
        for node in nodes or []:
            ClientNode.create(client=client, node=node)
        names = "all" if nodes is None else ", ".join(n.name for n in nodes)
        audit.record(client, "nodes", actor, names)
    sync.apply_client(client, current_settings().xray_timeout)
    client_changed.send(client, event="nodes", actor=actor, old_status=client.status)
    return client
