"""`flask --app wsgi api-key …`: keys for the JSON API."""

from __future__ import annotations

import json

import click
from flask import Flask

from webpanel.models import ApiKey
from webpanel.models import db
from webpanel.services import api_keys
from webpanel.services.api_keys import ApiKeyError
from webpanel.services.client_json import iso


def key_json(key: ApiKey) -> dict:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope,
        "webhook_url": api_keys.shown_url(key.webhook_url) or None,
        "created": iso(key.created_at),
        "last_used": iso(key.last_used_at),
        "revoked": iso(key.revoked_at),
    }


def register_api_key_cli(app: Flask) -> None:
    @app.cli.group("api-key")
    def api_key_group() -> None:
        """Make, list and revoke keys for the JSON API (/api/v1)."""

    @api_key_group.command("create")
    @click.argument("name")
    @click.option(
        "--scope",
        type=click.Choice(api_keys.SCOPES),
        default="read",
        show_default=True,
        help="read: GET calls only; write: everything",
    )
    @click.option("--webhook", "webhook_url", default="", help="URL for client events")
    def create(name: str, scope: str, webhook_url: str) -> None:
        """Make a key and print it once; only its hash is kept."""
        with db.connection_context():
            try:
                key, plain = api_keys.create_key(name, scope, webhook_url)
            except ApiKeyError as error:
                raise click.ClickException(str(error)) from None
        click.echo(plain)
        click.echo(
            f"key {key.name} ({key.scope}) made; it is not shown again", err=True
        )
        if key.webhook_secret:
            click.echo(f"webhook secret: {key.webhook_secret}", err=True)

    @api_key_group.command("list")
    @click.option("--all", "show_all", is_flag=True, help="revoked keys too")
    @click.option("--json", "as_json", is_flag=True)
    def list_command(show_all: bool, as_json: bool) -> None:
        """The keys: name, start of the key, scope, webhook, last use."""
        with db.connection_context():
            keys = api_keys.list_keys(include_revoked=show_all)
        if as_json:
            click.echo(json.dumps([key_json(k) for k in keys], ensure_ascii=False))
            return
        if keys:
            click.echo("name\tkey\tscope\twebhook\tlast used")
        for key in keys:
            used = iso(key.last_used_at) or "never"
            state = f"revoked {iso(key.revoked_at)}" if key.revoked_at else used
            hook = api_keys.shown_url(key.webhook_url) or "-"
            click.echo(f"{key.name}\t{key.prefix}…\t{key.scope}\t{hook}\t{state}")

    @api_key_group.command("webhook")
    @click.argument("name")
    @click.argument("url", default="")
    def webhook(name: str, url: str) -> None:
        """Send a key's client events to URL; no URL: stop sending them."""
        with db.connection_context():
            key = api_keys.find_key(name)
            if key is None:
                raise click.ClickException(f"no active key named {name!r}")
            try:
                secret = api_keys.set_webhook(key, url)
            except ApiKeyError as error:
                raise click.ClickException(str(error)) from None
        click.echo(f"key {name}: webhook {url or 'removed'}")
        if secret:
            click.echo(f"webhook secret: {secret}")

    @api_key_group.command("revoke")
    @click.argument("name")
    def revoke(name: str) -> None:
        """Stop a key working, at once."""
        with db.connection_context():
            key = api_keys.find_key(name)
            if key is None:
                raise click.ClickException(f"no active key named {name!r}")
            api_keys.revoke_key(key)
        click.echo(f"key {name} revoked")
