"""infinity: a self-hosted panel for Xray servers."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values
from flask import Flask
from flask import g
from flask import render_template
from flask import request
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from webpanel.api.problems import problem
from webpanel.database import migrate
from webpanel.database import open_database
from webpanel.database import start_lock
from webpanel.formatting import register_filters
from webpanel.models import Admin
from webpanel.models import db
from webpanel.nodes import ensure_default_node
from webpanel.settings import ROOT
from webpanel.settings import load_settings

log = logging.getLogger(__name__)

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = None

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(
    env: Mapping[str, str] | None = None, instance_path: Path | None = None
) -> Flask:
    """Build the app. env defaults to `.env` overlaid by the process environment."""
    if env is None:
        env = {**dotenv_values(ROOT / ".env"), **os.environ}
        env = {k: v for k, v in env.items() if v is not None}
    settings = load_settings(env, instance_path)
    _configure_logging()
    settings.instance_path.mkdir(parents=True, exist_ok=True)

    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.extensions["infinity.settings"] = settings
    app.extensions["infinity.env"] = dict(env)  # plugins read their own settings

    database = open_database(settings.database_url)
    # gunicorn workers start together: one at a time brings the schema up.
    with start_lock(settings.instance_path):
        migrate(database)
        with database.connection_context():
            ensure_default_node(settings)

    csrf.init_app(app)
    login_manager.init_app(app)
    _register_blueprints(app)
    _register_hooks(app)
    _register_errors(app)
    register_filters(app)

    from webpanel.cli import register_cli
    from webpanel.services import webhooks

    webhooks.connect()

    register_cli(app)
    return app


def _configure_logging() -> None:
    """INFO to stderr unless the host (gunicorn, tests) set logging up already."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # Third-party loggers that may print request URLs with secrets at DEBUG.
    for name in ("telebot", "urllib3"):
        logging.getLogger(name).setLevel(
            max(logging.INFO, logging.getLogger(name).level)
        )
    # APScheduler logs every run at INFO; our jobs log what matters themselves.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _register_blueprints(app: Flask) -> None:
    from plugins.telegram_bot.webhook import bp as telegram_webhook
    from webpanel.api import bp as api_bp
    from webpanel.api_keys_page import bp as api_keys_bp
    from webpanel.auth import bp as auth_bp
    from webpanel.nodes_page import bp as nodes_bp
    from webpanel.panel import bp as panel_bp
    from webpanel.status import bp as status_bp
    from webpanel.subscriptions import bp as subscriptions_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(panel_bp)
    app.register_blueprint(nodes_bp)
    app.register_blueprint(api_keys_bp)
    app.register_blueprint(status_bp)
    app.register_blueprint(subscriptions_bp)
    # The API takes keys in a header, never cookies: CSRF can't reach it.
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp)
    # The bot's webhook: Telegram posts there, with its own secret, no CSRF.
    csrf.exempt(telegram_webhook)
    app.register_blueprint(telegram_webhook)


@login_manager.user_loader
def _load_admin(admin_id: str) -> Admin | None:
    if not (admin_id.isascii() and admin_id.isdigit()):
        return None
    return Admin.get_or_none(Admin.id == int(admin_id))


@login_manager.unauthorized_handler
def _unauthorized():
    from flask import redirect
    from flask import url_for

    target = url_for("auth.login", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        # A session expired under an HTMX call: send the whole page to sign-in.
        return "", 401, {"HX-Redirect": target}
    return redirect(target)


def _register_hooks(app: Flask) -> None:
    @app.before_request
    def _open_db() -> None:
        # Close at teardown only what this request opened (tests and the CLI
        # may already hold this thread's connection).
        g.db_opened = db.connect(reuse_if_open=True)

    @app.teardown_request
    def _close_db(_exc: BaseException | None) -> None:
        if g.pop("db_opened", False) and not db.is_closed():
            db.close()

    @app.after_request
    def _headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.vary.add("HX-Request")
        return response

    @app.context_processor
    def _template_globals() -> dict:
        return {"settings": app.extensions["infinity.settings"], "g": g}


def _register_errors(app: Flask) -> None:
    def page(code: int, title: str, message: str, error: Exception | None = None):
        if request.path.startswith("/api/"):
            headers = error.get_headers() if isinstance(error, HTTPException) else []
            allow = {k: v for k, v in headers if k == "Allow"}
            return problem(code, message, headers=allow)
        return render_template("error.html", title=title, message=message), code

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return page(400, "Form expired", "Reload the page and try again.")

    @app.errorhandler(404)
    def _not_found(error: Exception):
        return page(404, "Not found", "There is nothing here.")

    @app.errorhandler(405)
    def _method(error: Exception):
        return page(
            405, "Not allowed", "This address does not take that request.", error
        )

    @app.errorhandler(413)
    def _too_large(error: Exception):
        return page(413, "Too large", "The request is too large.")

    @app.errorhandler(500)
    def _server_error(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return page(500, "Something went wrong", "The error was logged.")
