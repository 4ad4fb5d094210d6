"""The admin's pages: clients, one client, and the node banner."""

from __future__ import annotations

import io
from datetime import datetime

import segno
from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required

from webpanel.charts import bar_chart
from webpanel.formatting import last_day
from webpanel.models import Client
from webpanel.models import Node
from webpanel.nodes import nodes_of
from webpanel.services import audit
from webpanel.services import clients as client_service
from webpanel.services import history
from webpanel.services import nodes as node_service
from webpanel.services.clients import ClientError
from webpanel.services.inputs import name_key
from webpanel.services.invites import make_invite
from webpanel.services.links import client_links
from webpanel.services.links import subscription_url
from webpanel.services.nodes import NodeError
from webpanel.settings import current_settings

bp = Blueprint("panel", __name__)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in admin."""


def _htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _actor() -> str:
    return f"admin:{current_user.username}"


def _client_or_404(client_id: int) -> Client:
    client = Client.get_or_none(Client.id == client_id)
    if client is None:
        abort(404)
    return client


@bp.get("/")
def index():
    return redirect(url_for("panel.clients"))


@bp.get("/clients")
def clients():
    page = _client_page(request.args.get("q", ""), request.args.get("page", "1"))
    if _htmx() and request.headers.get("HX-Target") == "clients-table":
        return render_template("_clients_table.html", **page)
    return render_template("clients.html", form={}, errors={}, **page)


PAGE_SIZE = 50


def _client_page(query: str, page: str) -> dict:
    """One page of clients, newest first, optionally filtered by name or key."""
    query = query.strip()
    number = int(page) if page.isascii() and page.isdigit() and int(page) > 0 else 1
    rows = Client.select().order_by(Client.id.desc())
    if query:
        rows = rows.where(
            Client.name_key.contains(name_key(query)) | (Client.email == query.lower())
        )
    total = rows.count()
    shown = list(rows.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return {
        "clients": shown,
        "q": query,
        "page": number,
        "total": total,
        "pages": max(1, -(-total // PAGE_SIZE)),
    }


@bp.post("/clients")
def create():
    form = request.form
    try:
        client = client_service.create_client(
            form.get("name", ""),
            data_limit=client_service.parse_limit_gb(form.get("limit_gb")),
            days=client_service.parse_days(form.get("days")),
            on_hold=form.get("on_hold") == "on",
            reset_strategy=client_service.parse_reset_strategy(form.get("reset")),
            actor=_actor(),
        )
    except ClientError as error:
        if _htmx():
            return render_template(
                "_client_form.html", form=form, errors=error.errors
            ), 422
        page = _client_page("", "1")
        return render_template(
            "clients.html", form=form, errors=error.errors, **page
        ), 422
    target = url_for("panel.client", client_id=client.id)
    if _htmx():
        return "", 201, {"HX-Redirect": target}
    return redirect(target)


@bp.get("/clients/<int:client_id>")
def client(client_id: int):
    return _page(_client_or_404(client_id))


@bp.get("/clients/<int:client_id>/qr.svg")
def qr(client_id: int):
    node = request.args.get("node", type=int)
    links = client_links(_client_or_404(client_id))
    link = next((link for n, link in links if node in (None, n.id)), None)
    if link is None:
        abort(404)
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False)
    response = Response(out.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/clients/<int:client_id>/edit")
def edit(client_id: int):
    record = _client_or_404(client_id)
    form = request.form
    try:
        nodes = _nodes_from_form(record, form.getlist("nodes"))
        client_service.edit_client(
            record,
            name=form.get("name", ""),
            data_limit=client_service.parse_limit_gb(form.get("limit_gb")),
            expire_at=_expiry_from_form(record, form.get("expire_on")),
            reset_strategy=client_service.parse_reset_strategy(form.get("reset")),
            actor=_actor(),
        )
        if nodes is not NO_CHANGE:
            node_service.set_client_nodes(record, nodes, actor=_actor())
    except (ClientError, NodeError) as error:
        record = _client_or_404(client_id)  # the saved one, not the refused edit
        card = _card(record, form=form, errors=error.errors)
        return card if _htmx() else _page(record, form, error.errors), 422
    return _after_action(record)


def _expiry_from_form(record: Client, text: str | None) -> datetime | None:
    """The form shows a day; an unchanged day keeps the exact expiry it stands for."""
    tz = current_settings().tz
    if (text or "").strip() == last_day(record.expire_at, tz):
        return record.expire_at
    return client_service.parse_expiry_date(text, tz)


NO_CHANGE = object()


def _nodes_from_form(record: Client, names: list[str]) -> object:
    """The edit form's node boxes → None (all), a list, or NO_CHANGE."""
    if Node.select().count() < 2:
        return NO_CHANGE
    if not names:
        raise NodeError({"nodes": "Choose at least one node, or all."})
    chosen = (
        None if "all" in names else [n for n in map(node_service.find_node, names) if n]
    )
    current = None if record.all_nodes else nodes_of(record)
    return NO_CHANGE if chosen == current else chosen


def _card(record: Client, form: dict | None = None, errors: dict | None = None) -> str:
    return _render("_client_card.html", record, form, errors)


def _page(record: Client, form: dict | None = None, errors: dict | None = None) -> str:
    return _render("client.html", record, form, errors)


def _render(
    template: str, record: Client, form: dict | None, errors: dict | None
) -> str:
    tz = current_settings().tz
    charts = {
        "hours": bar_chart(history.hourly(record.id, 24), "%H:%M %Z", tz),
        "days": bar_chart(history.daily(record.id, 30), "%Y-%m-%d (UTC day)"),
    }
    chosen = nodes_of(record)
    return render_template(
        template,
        client=record,
        links=client_links(record),
        subscription=subscription_url(record),
        per_node=history.per_node(record.id),
        every_node=list(Node.select().order_by(Node.id)),
        client_node_ids={node.id for node in chosen},
        charts=charts,
        audit=audit.recent(record, 10),
        form=form,
        errors=errors or {},
    )


@bp.post("/clients/<int:client_id>/reset")
def reset(client_id: int):
    record = client_service.reset_usage(_client_or_404(client_id), actor=_actor())
    return _after_action(record)


@bp.post("/clients/<int:client_id>/extend")
def extend(client_id: int):
    record = _client_or_404(client_id)
    try:
        days = client_service.parse_days(request.form.get("days"))
        if days is None:
            raise ClientError({"extend": "Say how many days to add."})
        client_service.extend_client(record, days, actor=_actor())
    except ClientError as error:
        record = _client_or_404(client_id)
        errors = {"extend": next(iter(error.errors.values()))}
        card = _card(record, errors=errors)
        return card if _htmx() else _page(record, errors=errors), 422
    return _after_action(record)


def _after_action(record: Client):
    if _htmx():
        return _card(record)
    return redirect(url_for("panel.client", client_id=record.id))


@bp.post("/clients/<int:client_id>/invite")
def invite(client_id: int):
    record = _client_or_404(client_id)
    code = make_invite(record, actor=_actor()).code
    if _htmx():
        return render_template("_invite.html", code=code, bot=_bot_username())
    return redirect(url_for("panel.client", client_id=record.id))


def _bot_username() -> str:
    """The bot's @name, when the bot plugin runs in this process and knows it."""
    for state in current_app.extensions.get("infinity.plugins", []):
        if state.name == "telegram_bot" and state.plugin is not None:
            return getattr(state.plugin, "username", "") or ""
    return ""


@bp.post("/clients/<int:client_id>/<any(enable, disable):action>")
def toggle(client_id: int, action: str):
    record = _client_or_404(client_id)
    if action == "enable":
        client_service.enable_client(record, actor=_actor())
    else:
        client_service.disable_client(record, actor=_actor())
    return _after_action(record)


@bp.post("/clients/<int:client_id>/delete")
def delete(client_id: int):
    client_service.delete_client(_client_or_404(client_id), actor=_actor())
    target = url_for("panel.clients")
    if _htmx():
        return "", 200, {"HX-Redirect": target}
    return redirect(target)


@bp.get("/nodes/banner")
def banner():
    return render_template("_node_banner.html", nodes=list(Node.select()))


@bp.app_template_global()
def all_nodes() -> list[Node]:
    return list(Node.select())
