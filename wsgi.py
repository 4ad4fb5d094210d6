"""The entry point for gunicorn (`wsgi:app`) and `flask --app wsgi`."""

from webpanel import create_app

app = create_app()
