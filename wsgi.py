"""The entry point for gunicorn (`wsgi:app`) and `flask --app wsgi`."""

import sys

from webpanel import create_app
from webpanel.settings import SettingsError

try:
    app = create_app()
except SettingsError as error:
    # A bad setting is the admin's to fix: say which, without a traceback.
    print(f"infinity: {error}", file=sys.stderr)
    raise SystemExit(2) from None
