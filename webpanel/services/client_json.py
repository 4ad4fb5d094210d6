"""What scripts get for a client: the names of DESIGN.md §8, for CLI, API and hooks."""

from __future__ import annotations

from datetime import datetime

from webpanel.models import Client
from webpanel.nodes import nodes_of
from webpanel.services.links import client_links
from webpanel.services.links import subscription_url


def client_json(client: Client) -> dict:
    links = client_links(client)
    return {
        "name": client.name,
        "email": client.email,
        "status": client.status,
        "pending": client.pending,
        "uuid": client.uuid,
        "uplink": client.uplink,
        "downlink": client.downlink,
        "used": client.used,
        "limit": client.data_limit,
        "expiry": iso(client.expire_at),
        "on_hold_days": client.on_hold_days,
        "reset_strategy": client.reset_strategy,
        "next_reset": iso(client.next_reset_at),
        "used_total": client.used_total,
        "last_traffic": iso(client.last_traffic_at),
        "created": iso(client.created_at),
        "link": links[0][1] if links else None,
        "links": {node.name: link for node, link in links},
        "subscription_url": subscription_url(client),
        "nodes": "all" if client.all_nodes else [n.name for n in nodes_of(client)],
    }


def iso(moment: datetime | None) -> str | None:
    """A stored (naive UTC) time as RFC 3339 with a Z."""
    return moment.isoformat() + "Z" if moment else None
