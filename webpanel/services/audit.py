"""The audit log: who or what changed a client, written with the change."""

from __future__ import annotations

from webpanel.models import AuditEntry
from webpanel.models import Client


def record(client: Client, event: str, actor: str, detail: str = "") -> None:
    """Call inside the transaction that makes the change."""
    AuditEntry.create(
        actor=actor[:64],
        event=event,
        client_id=client.id,
        client_name=client.name,
        detail=detail,
    )


def recent(client: Client | None = None, limit: int = 50) -> list[AuditEntry]:
    query = AuditEntry.select().order_by(AuditEntry.id.desc()).limit(limit)
    if client is not None:
        query = query.where(AuditEntry.client_id == client.id)
    return list(query)
