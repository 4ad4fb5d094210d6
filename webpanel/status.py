"""`/-/status`: the plugins, jobs and nodes of this panel, for its admins."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import render_template
from flask_login import login_required

from webpanel.models import Node

bp = Blueprint("status", __name__)


@bp.get("/-/status")
@login_required
def index():
    runtime = current_app.extensions.get("infinity.runtime")
    jobs = runtime.scheduler.get_jobs() if runtime else []
    return render_template(
        "status.html",
        runtime=runtime,
        jobs=jobs,
        plugins=current_app.extensions.get("infinity.plugins", []),
        nodes=list(Node.select().order_by(Node.id)),
    )
