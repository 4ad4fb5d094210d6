"""The nodes page: every daemon, its state, and adding or removing one."""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import login_required

from webpanel.models import Node
from webpanel.services import nodes as node_service
from webpanel.services.nodes import NodeError

bp = Blueprint("nodes", __name__)

FIELDS = (
    "name",
    "api_address",
    "flavor",
    "inbound_tag",
    "flow",
    "public_host",
    "public_port",
    "reality_sni",
    "reality_public_key",
    "reality_short_id",
    "reality_fingerprint",
)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in admin."""


def _page(form: dict, errors: dict, status: int = 200):
    nodes = list(Node.select().order_by(Node.id))
    return render_template("nodes.html", nodes=nodes, form=form, errors=errors), status


@bp.get("/nodes")
def index():
    return _page({}, {})


@bp.post("/nodes")
def add():
    form = {field: request.form.get(field, "") for field in FIELDS}
    port = form["public_port"].strip() or "8443"
    if not (port.isascii() and port.isdigit()):
        return _page(form, {"public_port": "Public port must be 1-65535."}, 422)
    try:
        node_service.add_node(
            form["name"],
            form["api_address"],
            flavor=form["flavor"] or "xray",
            inbound_tag=form["inbound_tag"],
            flow=form["flow"],
            public_host=form["public_host"],
            public_port=int(port),
            reality_sni=form["reality_sni"],
            reality_public_key=form["reality_public_key"],
            reality_short_id=form["reality_short_id"],
            reality_fingerprint=form["reality_fingerprint"],
        )
    except NodeError as error:
        return _page(form, error.errors, 422)
    return redirect(url_for("nodes.index"))


@bp.post("/nodes/<int:node_id>/delete")
def delete(node_id: int):
    node = Node.get_or_none(Node.id == node_id)
    if node is None:
        abort(404)
    try:
        node_service.remove_node(node)
    except NodeError as error:
        return _page({}, error.errors, 422)
    return redirect(url_for("nodes.index"))
