"""One-time invite codes: the panel makes one, a plugin (the bot) redeems it."""

from __future__ import annotations

import secrets
from datetime import datetime
from datetime import timedelta

from webpanel.models import Client
from webpanel.models import Invite
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services import audit

VALID_FOR = timedelta(days=7)


def make_invite(client: Client, *, actor: str = "system") -> Invite:
    """A fresh code for the client; it works once, for VALID_FOR."""
    now = utcnow()
    with db.atomic():
        invite = Invite.create(
            code=secrets.token_urlsafe(
                12
            ),  # Telegram's start parameter: ≤ 64 of A-Za-z0-9_-
            client=client,
            created_at=now,
            expires_at=now + VALID_FOR,
        )
        audit.record(client, "invite", actor)
    return invite


def redeem_invite(
    code: str, *, actor: str, now: datetime | None = None
) -> Client | None:
    """The client a valid, unused code belongs to (using it up), or None."""
    now = now or utcnow()
    with db.atomic():
        invite = Invite.get_or_none(
            (Invite.code == code.strip())
            & Invite.used_at.is_null()
            & (Invite.expires_at > now)
        )
        if invite is None:
            return None
        invite.used_at = now
        invite.save()
        client = invite.client
        audit.record(client, "invite_used", actor)
    return client
