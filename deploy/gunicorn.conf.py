"""gunicorn settings: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

One worker with threads is recommended; with more workers, a lock in
instance/ lets only one of them run the jobs (and, later, the bot).
"""

import os
from pathlib import Path

from dotenv import dotenv_values

_env = {**dotenv_values(Path(__file__).resolve().parent.parent / ".env"), **os.environ}

try:
    from webpanel.settings import SettingsError
    from webpanel.settings import load_settings

    load_settings({k: v for k, v in _env.items() if v is not None})
except SettingsError as error:
    raise SystemExit(f"infinity: {error}") from None

bind = f"{_env.get('PANEL_HOST') or '127.0.0.1'}:{_env.get('PANEL_PORT') or '8000'}"
workers = int(_env.get("GUNICORN_WORKERS") or "1")
threads = int(_env.get("GUNICORN_THREADS") or "8")
timeout = 60
# The longest request line gunicorn takes (its default is half): a long
# search or cursor gets the API's own answer rather than a bare 414 page.
limit_request_line = 8190
accesslog = "-"
logger_class = "webpanel.access_log.AccessLogger"  # masks tokens in paths
# gunicorn's control socket lives in one per-user path; two panels on a host
# would share it, and the panel does not use it.
control_socket_disable = True


def post_worker_init(worker) -> None:
    from webpanel.cli import announce_setup
    from webpanel.runtime import start_runtime

    if start_runtime(worker.wsgi) is not None:
        announce_setup(worker.wsgi)
