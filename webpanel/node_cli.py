"""`flask --app wsgi node …`, and choosing a client's nodes from the command line."""

from __future__ import annotations

import json

import click
from flask import Flask

from webpanel.models import Node
from webpanel.models import db
from webpanel.services import clients as client_service
from webpanel.services import nodes as node_service
from webpanel.services.nodes import NodeError


def node_json(node: Node) -> dict:
    return {
        "name": node.name,
        "api": node.api_address,
        "flavor": node.flavor,
        "inbound_tag": node.inbound_tag,
        "flow": node.flow,
        "public_host": node.public_host,
        "public_port": node.public_port,
        "state": node.state,
        "uptime": node.seen_uptime,
        "last_error": node.last_error,
    }


def _node(name: str) -> Node:
    node = node_service.find_node(name)
    if node is None:
        raise click.ClickException(f"no node named {name!r}")
    return node


def register_node_cli(app: Flask, client_group: click.Group) -> None:
    @app.cli.group("node")
    def node_group() -> None:
        """Add, list and remove nodes (Xray daemons)."""

    @node_group.command("add")
    @click.argument("name")
    @click.option("--api", "api_address", required=True, help="HOST:PORT of its API")
    @click.option("--flavor", default="xray", help="xray, or v2ray for Debian's")
    @click.option("--tag", "inbound_tag", default="vless-in")
    @click.option("--flow", default="xtls-rprx-vision", help="empty for none")
    @click.option("--public-host", default="")
    @click.option("--public-port", default=8443, type=int)
    @click.option("--sni", "reality_sni", default="")
    @click.option("--public-key", "reality_public_key", default="")
    @click.option("--short-id", "reality_short_id", default="")
    @click.option("--fingerprint", "reality_fingerprint", default="chrome")
    def node_add(name: str, **options: object) -> None:
        with db.connection_context():
            try:
                node = node_service.add_node(name, **options)
            except NodeError as error:
                raise click.ClickException(str(error)) from None
        click.echo(f"node {node.name} added; the recovery job fills it with clients")

    @node_group.command("list")
    @click.option("--json", "as_json", is_flag=True)
    def node_list(as_json: bool) -> None:
        with db.connection_context():
            nodes = list(Node.select().order_by(Node.id))
        if as_json:
            click.echo(json.dumps([node_json(n) for n in nodes]))
            return
        for n in nodes:
            click.echo(
                f"{n.name}\t{n.api_address}\t{n.flavor}\t{n.inbound_tag}\t{n.state}"
            )

    @node_group.command("remove")
    @click.argument("name")
    def node_remove(name: str) -> None:
        with db.connection_context():
            try:
                node_service.remove_node(_node(name))
            except NodeError as error:
                raise click.ClickException(str(error)) from None
        click.echo(f"node {name} removed (its daemon keeps the users it holds)")

    @client_group.command("nodes")
    @click.argument("name")
    @click.argument("nodes")
    def client_nodes(name: str, nodes: str) -> None:
        """Put client NAME on NODES: `all`, or names separated by commas."""
        with db.connection_context():
            client = client_service.find_client(name)
            if client is None:
                raise click.ClickException(f"no client named {name!r}")
            chosen = None
            if nodes.strip().lower() != "all":
                chosen = [_node(part) for part in nodes.split(",") if part.strip()]
            try:
                node_service.set_client_nodes(client, chosen, actor="cli")
            except NodeError as error:
                raise click.ClickException(str(error)) from None
        click.echo(f"{client.name}: on {nodes}")
