"""The command line: `flask --app wsgi COMMAND` (see DESIGN.md §8)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable

import click
from flask import Flask

from webpanel.api_key_cli import register_api_key_cli
from webpanel.auth import AdminError
from webpanel.auth import create_admin
from webpanel.auth import setup_token
from webpanel.formatting import human_bytes
from webpanel.models import Client
from webpanel.models import db
from webpanel.node_cli import register_node_cli
from webpanel.services import accounting
from webpanel.services import clients as client_service
from webpanel.services import sync
from webpanel.services.client_json import client_json
from webpanel.services.client_json import iso
from webpanel.services.clients import ClientError
from webpanel.services.links import client_link
from webpanel.services.links import client_links
from webpanel.settings import current_settings
from webpanel.xray_config_cli import register_xray_config_cli


def with_db(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with db.connection_context():
            return func(*args, **kwargs)

    return wrapper


def _find(name: str) -> Client:
    client = client_service.find_client(name)
    if client is None:
        raise click.ClickException(f"no client named {name!r}")
    return client


def _client_line(c: Client) -> str:
    limit = "unlimited" if c.data_limit is None else human_bytes(c.data_limit)
    expiry = c.expire_at.isoformat(timespec="minutes") if c.expire_at else "never"
    pending = " (pending)" if c.pending else ""
    fields = [c.name, c.email, c.status + pending, f"used {human_bytes(c.used)}"]
    return "\t".join([*fields, f"limit {limit}", f"expires {expiry}"])


def register_cli(app: Flask) -> None:
    register_xray_config_cli(app)
    register_api_key_cli(app)

    @app.cli.command("init")
    @with_db
    def init() -> None:
        """Create instance/, the secret key and the database (done at start too)."""
        token = setup_token()
        click.echo(f"instance ready in {app.instance_path}")
        if token:
            click.echo("no admin yet: run `create-admin NAME`, or open the setup link")
            click.echo(f"  http://{_panel_address()}/setup/{token}")

    @app.cli.command("create-admin")
    @click.argument("name")
    @with_db
    def create_admin_command(name: str) -> None:
        """Make an admin; the password comes from a prompt or stdin."""
        if sys.stdin.isatty():
            password = click.prompt(
                "Password", hide_input=True, confirmation_prompt=True
            )
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        try:
            create_admin(name, password)
        except AdminError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"admin {name} created")

    @app.cli.group("client")
    def client_group() -> None:
        """Create, list and change clients."""

    @client_group.command("add")
    @click.argument("name")
    @click.option("--limit-gb", default=None, help="data limit in GB (1024³ bytes)")
    @click.option("--days", default=None, help="days until expiry")
    @click.option("--on-hold", is_flag=True, help="the days start at first traffic")
    @click.option(
        "--reset",
        "reset_strategy",
        default="none",
        help="zero usage every: none, day, week, month, year",
    )
    @click.option("--json", "as_json", is_flag=True)
    @with_db
    def client_add(
        name: str,
        limit_gb: str | None,
        days: str | None,
        on_hold: bool,
        reset_strategy: str,
        as_json: bool,
    ) -> None:
        try:
            client = client_service.create_client(
                name,
                data_limit=client_service.parse_limit_gb(limit_gb),
                days=client_service.parse_days(days),
                on_hold=on_hold,
                reset_strategy=client_service.parse_reset_strategy(reset_strategy),
                actor="cli",
            )
        except ClientError as error:
            raise click.ClickException(str(error)) from None
        _show(client, as_json)
        if client.pending:
            click.echo(
                "note: Xray did not answer; the client is saved and pending", err=True
            )

    @client_group.command("list")
    @click.option("--json", "as_json", is_flag=True)
    @with_db
    def client_list(as_json: bool) -> None:
        rows = list(Client.select().order_by(Client.id))
        if as_json:
            click.echo(json.dumps([client_json(c) for c in rows], ensure_ascii=False))
            return
        for c in rows:
            click.echo(_client_line(c))

    @client_group.command("show")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True)
    @with_db
    def client_show(name: str, as_json: bool) -> None:
        _show(_find(name), as_json)

    @client_group.command("link")
    @click.argument("name")
    @with_db
    def client_link_command(name: str) -> None:
        """Print the client's link, one per node it is on."""
        links = client_links(_find(name))
        if not links:
            raise click.ClickException(
                "set PUBLIC_HOST (and the REALITY_* settings) first"
            )
        for _, link in links:
            click.echo(link)

    for action in ("enable", "disable", "delete"):
        _add_action(client_group, action)
    register_node_cli(app, client_group)

    @client_group.command("reset")
    @click.argument("name")
    @with_db
    def client_reset(name: str) -> None:
        """Zero a client's usage for this period (a disabled one stays disabled)."""
        client = client_service.reset_usage(_find(name), actor="cli")
        click.echo(f"{client.name}: usage reset, {client.status}")

    @client_group.command("extend")
    @click.argument("name")
    @click.argument("days")
    @with_db
    def client_extend(name: str, days: str) -> None:
        """Add DAYS to a client's expiry (from now, if it has passed)."""
        try:
            count = client_service.parse_days(days) or 0
            client = client_service.extend_client(_find(name), count, actor="cli")
        except ClientError as error:
            raise click.ClickException(str(error)) from None
        expiry = iso(client.expire_at) or f"{client.on_hold_days} days from first use"
        click.echo(f"{client.name}: {client.status}, expires {expiry}")

    @app.cli.command("sync")
    @with_db
    def sync_command() -> None:
        """Put every user Xray should hold back into it, now."""
        timeout = current_settings().xray_timeout
        failed = False
        for result in sync.recover_all(force=True, timeout=timeout):
            if result.online:
                click.echo(
                    f"{result.node}: in sync, {result.added} added, "
                    f"{result.removed} removed in {result.seconds:.2f} s"
                )
            else:
                failed = True
                click.echo(f"{result.node}: unreachable: {result.error}", err=True)
        if failed:
            sys.exit(1)

    @app.cli.command("poll")
    @with_db
    def poll_command() -> None:
        """Count traffic now."""
        timeout = current_settings().xray_timeout
        failed = False
        for result in accounting.poll_all(timeout):
            if result.online:
                click.echo(
                    f"{result.node}: {result.counted} bytes counted for "
                    f"{result.clients} clients"
                    + (" (daemon restarted)" if result.restarted else "")
                )
            else:
                failed = True
                click.echo(f"{result.node}: unreachable: {result.error}", err=True)
        client_service.enforce_limits()
        if failed:
            sys.exit(1)

    @app.cli.command("serve")
    @click.option("--host", default=None)
    @click.option("--port", default=None, type=int)
    def serve(host: str | None, port: int | None) -> None:
        """Run the panel with its jobs on PANEL_HOST:PANEL_PORT (development)."""
        from webpanel.runtime import start_runtime

        settings = current_settings()
        start_runtime(app)
        announce_setup(app)
        app.run(
            host=host or settings.panel_host,
            port=port or settings.panel_port,
            threaded=True,
            use_reloader=False,
        )


def _add_action(group: click.Group, action: str) -> None:
    @group.command(action)
    @click.argument("name")
    @with_db
    def command(name: str) -> None:
        client = _find(name)
        if action == "delete":
            client_service.delete_client(client, actor="cli")
            click.echo(f"{client.name} deleted")
            return
        change = getattr(client_service, f"{action}_client")
        change(client, actor="cli")
        click.echo(
            f"{client.name}: {client.status}" + (" (pending)" if client.pending else "")
        )

    command.__doc__ = f"{action.capitalize()} a client."


def _show(client: Client, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(client_json(client), ensure_ascii=False))
        return
    click.echo(_client_line(client))
    link = client_link(client)
    if link:
        click.echo(link)


def _panel_address() -> str:
    settings = current_settings()
    return f"{settings.panel_host}:{settings.panel_port}"


def announce_setup(app: Flask) -> None:
    """Print the one-time setup link while no admin exists."""
    with app.app_context(), db.connection_context():
        token = setup_token()
        if token:
            click.echo(
                "\n  No admin yet. Make the first one at:\n"
                f"    http://{_panel_address()}/setup/{token}\n"
                "  or run: make admin NAME=you\n"
                "  (for `make demo`: make demo-admin NAME=you)\n",
                err=True,
            )
