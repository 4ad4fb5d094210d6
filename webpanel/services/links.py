"""What a client is handed: its vless:// link."""

from __future__ import annotations

from webpanel.models import Client
from webpanel.settings import current_settings
from xray.links import vless_link


def client_link(client: Client) -> str | None:
    """The Reality share link, or None until PUBLIC_HOST is set."""
    settings = current_settings()
    if not settings.public_host:
        return None
    return vless_link(
        uuid=client.uuid,
        host=settings.public_host,
        port=settings.public_port,
        sni=settings.reality_sni,
        public_key=settings.reality_public_key,
        short_id=settings.reality_short_id,
        fingerprint=settings.reality_fingerprint,
        flow=client.flow,
        remark=client.name,
    )
