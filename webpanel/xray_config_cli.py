"""`flask --app wsgi xray-config write|import PATH`: Xray's config.json.

Registered from webpanel.cli; it imports nothing from there, so the two
modules can't import each other in a circle.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from flask import Flask

from webpanel.models import Node
from webpanel.models import db
from webpanel.services import xray_config
from xray.config import ConfigError
from xray.config import has_comments


def register_xray_config_cli(app: Flask) -> None:
    @app.cli.group("xray-config")
    def xray_config_group() -> None:
        """Write our users into Xray's config.json, or import its users."""

    @xray_config_group.command("write")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option("--tag", default=None, help="the VLESS inbound (the node's tag)")
    @click.option("--node", "node_name", default="main", help="whose users (main)")
    def write_command(path: str, tag: str | None, node_name: str) -> None:
        """Put every client that should be in Xray into PATH, atomically.

        Clients that are not the panel's stay as they are; so does the rest
        of the file, except its comments.
        """
        dropped_comments = has_comments(path)
        try:
            with db.connection_context():
                node = Node.get_or_none(Node.name == node_name)
                if node is None:
                    raise click.ClickException(f"no node named {node_name!r}")
                tag = tag or node.inbound_tag
                count = xray_config.write_users_to_config(path, tag, node)
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"{path}: inbound {tag} now holds our {count} users")
        if dropped_comments:
            click.echo("note: the comments the file had are not kept", err=True)

    @xray_config_group.command("import")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option("--tag", default=None, help="only this inbound (default: all VLESS)")
    @click.option("--json", "as_json", is_flag=True)
    def import_command(path: str, tag: str | None, as_json: bool) -> None:
        """Make a client of each VLESS user in PATH that the panel lacks."""
        try:
            with db.connection_context():
                report = xray_config.import_from_config(path, tag, actor="cli")
        except ConfigError as error:
            raise click.ClickException(str(error)) from None

        if as_json:
            click.echo(json.dumps(_report_json(report), ensure_ascii=False))
            return
        for made in report.created:
            note = f" (was {made.source_email or 'no email'})" if made.rekeyed else ""
            click.echo(f"created\t{made.name}\t{made.email}{note}")
        for skipped in report.skipped:
            click.echo(f"skipped\t{skipped.email or '-'}\t{skipped.reason}")
        click.echo(
            f"{len(report.created)} created, {len(report.skipped)} skipped",
            err=True,
        )


def _report_json(report: xray_config.ImportReport) -> dict:
    created = [{**asdict(made), "rekeyed": made.rekeyed} for made in report.created]
    return {"created": created, "skipped": [asdict(s) for s in report.skipped]}
