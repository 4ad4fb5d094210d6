"""The API keys page: make a key (shown once), see when each was used, revoke."""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import login_required

from webpanel.models import ApiKey
from webpanel.services import api_keys
from webpanel.services.api_keys import ApiKeyError

bp = Blueprint("api_keys", __name__)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in admin."""


def _page(
    form: dict,
    errors: dict,
    status: int = 200,
    made: tuple | None = None,
    hooked: tuple | None = None,
):
    keys = api_keys.list_keys(include_revoked=True)
    page = render_template(
        "api_keys.html",
        keys=keys,
        form=form,
        errors=errors,
        made=made,
        hooked=hooked,
        shown_url=api_keys.shown_url,
    )
    # The one page that shows a new key: never keep it in a cache.
    return page, status, {"Cache-Control": "no-store"}


@bp.get("/api-keys")
def index():
    return _page({}, {})


@bp.post("/api-keys")
def create():
    form = {f: request.form.get(f, "") for f in ("name", "scope", "webhook_url")}
    try:
        key, plain = api_keys.create_key(
            form["name"], form["scope"] or "read", form["webhook_url"]
        )
    except ApiKeyError as error:
        return _page(form, error.errors, 422)
    return _page({}, {}, 201, made=(key, plain))


@bp.post("/api-keys/<int:key_id>/webhook")
def webhook(key_id: int):
    key = _active(key_id)
    url = request.form.get("webhook_url", "")
    try:
        secret = api_keys.set_webhook(key, url)
    except ApiKeyError as error:
        errors = {f"webhook-{key.id}": error.errors["webhook_url"]}
        return _page({f"webhook-{key.id}": url}, errors, 422)
    return _page({}, {}, hooked=(key, secret))


@bp.post("/api-keys/<int:key_id>/revoke")
def revoke(key_id: int):
    api_keys.revoke_key(_active(key_id))
    if request.headers.get("HX-Request"):
        return _page({}, {})
    return redirect(url_for("api_keys.index"))


def _active(key_id: int) -> ApiKey:
    key = ApiKey.get_or_none(ApiKey.id == key_id)
    if key is None or not key.active:
        abort(404)
    return key
