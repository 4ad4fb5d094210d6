"""Nodes and server-wide figures through the API."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from webpanel.api import api
from webpanel.api import schemas
from webpanel.api.problems import ApiProblem
from webpanel.models import Node
from webpanel.services import stats
from webpanel.services.nodes import find_node


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment else None


def _document(node: Node) -> schemas.Node:
    return schemas.Node(
        name=node.name,
        api_address=node.api_address,
        flavor=node.flavor,
        inbound_tag=node.inbound_tag,
        state=node.state,
        online=node.online,
        in_sync=node.in_sync,
        last_error=node.last_error,
        public_host=node.public_host,
        public_port=node.public_port,
        uptime=node.seen_uptime,
        last_seen=_aware(node.seen_at),
        synced=_aware(node.synced_at),
        restored_count=node.restored_count,
    )


@api.operation("GET", "/nodes", tag="nodes", scope="read", response=schemas.NodeList)
def list_nodes():
    """List the nodes and their state

    `state` is `online` (and in sync), `out_of_sync` (answering, users being
    put back), `offline`, or `unchecked` before the first look.
    """
    return schemas.NodeList(
        items=[_document(n) for n in Node.select().order_by(Node.id)]
    )


@api.operation(
    "GET",
    "/nodes/<node>",
    tag="nodes",
    scope="read",
    response=schemas.Node,
    path_params={"node": "The node's name."},
    path_examples={"node": "main"},
)
def get_node(node: str):
    """Read a node"""
    found = find_node(node)
    if found is None:
        raise ApiProblem(404, "There is no node with this name.")
    return _document(found)


@api.operation("GET", "/stats", tag="server", scope="read", response=schemas.Stats)
def server_stats():
    """Figures for the whole server

    Clients by status, today's traffic (UTC) and how many nodes answer.
    """
    figures = stats.server_stats()
    return schemas.Stats(
        clients_total=figures.clients_total,
        clients_by_status=figures.clients_by_status,
        traffic_today=figures.traffic_today,
        nodes_total=len(figures.nodes),
        nodes_online=sum(1 for n in figures.nodes if n.online),
    )
