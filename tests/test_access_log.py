"""gunicorn's logs keep subscription and setup tokens out."""

from __future__ import annotations

import io

from gunicorn.config import Config

from webpanel.access_log import AccessLogger
from webpanel.access_log import mask_paths

TOKEN = "EFmAVmU4QGzniKJ3Jaiygb94EZBC9qIw"


def test_it_cuts_tokens_in_subscription_and_setup_paths_to_four_characters():
    assert mask_paths(f"GET /sub/{TOKEN}?format=clash HTTP/1.1") == (
        "GET /sub/EFmA…?format=clash HTTP/1.1"
    )
    assert mask_paths(f"/setup/{TOKEN}") == "/setup/EFmA…"
    assert mask_paths("/clients/12") == "/clients/12"


def test_it_masks_tokens_in_gunicorns_error_log():
    config = Config()
    config.set("errorlog", "-")
    logger = AccessLogger(config)
    written = io.StringIO()
    for handler in logger.error_log.handlers:
        handler.stream = written

    logger.error("Error handling request %s", f"GET /sub/{TOKEN}")

    assert "Error handling request GET /sub/EFmA…" in written.getvalue()
    assert TOKEN not in written.getvalue()
