"""Signing in and out, and making the first admin through a one-time link."""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from webpanel.models import Admin
from webpanel.models import db

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

WRONG_LOGIN = "Wrong username or password."
# Checked when the username is unknown, so both cases take the same time.
_DUMMY_HASH = generate_password_hash("not-a-password")
MIN_PASSWORD = 8


class AdminError(ValueError):
    pass


def create_admin(username: str, password: str) -> Admin:
    username = username.strip()
    if not username or len(username) > 64:
        raise AdminError("Username must be 1 to 64 characters.")
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"Password must be at least {MIN_PASSWORD} characters.")
    hashed = generate_password_hash(password)  # slow on purpose: not in the transaction
    with db.atomic():
        if Admin.select().where(Admin.username == username).exists():
            raise AdminError(f"Admin {username!r} already exists.")
        admin = Admin.create(username=username, password_hash=hashed)
    _setup_token_path().unlink(missing_ok=True)
    log.info("admin %s created", username)
    return admin


def check_login(username: str, password: str) -> Admin | None:
    admin = Admin.get_or_none(Admin.username == username.strip())
    hashed = admin.password_hash if admin else _DUMMY_HASH
    if check_password_hash(hashed, password) and admin is not None:
        return admin
    return None


def _setup_token_path() -> Path:
    return Path(current_app.instance_path) / "setup-token"


def setup_token() -> str | None:
    """The one-time token for making the first admin; None once one exists."""
    if Admin.select().exists():
        return None
    path = _setup_token_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("panel.clients"))
    error = None
    if request.method == "POST":
        admin = check_login(
            request.form.get("username", ""), request.form.get("password", "")
        )
        if admin is not None:
            login_user(admin)
            return redirect(_safe_next(request.args.get("next")))
        log.warning(
            "failed sign-in for %r from %s",
            request.form.get("username", "")[:64],
            request.remote_addr,
        )
        error = WRONG_LOGIN
    no_admin = not Admin.select().exists()
    return render_template(
        "login.html", error=error, no_admin=no_admin
    ), 422 if error else 200


def _safe_next(target: str | None) -> str:
    """Only follow a local path, never another site.

    Browsers drop tabs and newlines inside URLs and read a backslash as a
    slash, so `/\t/evil` or `/\\evil` would lead away: refuse any of those.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and target.isprintable()
        and " " not in target
        and "\\" not in target
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("panel.clients")


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str):
    expected = setup_token()
    if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
        abort(404)
    error = None
    username = request.form.get("username", "admin")
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("password2", ""):
            error = "The passwords differ."
        else:
            try:
                admin = create_admin(username, password)
            except AdminError as exc:
                error = str(exc)
            else:
                login_user(admin)
                return redirect(url_for("panel.clients"))
    return render_template(
        "setup.html", error=error, username=username
    ), 422 if error else 200
