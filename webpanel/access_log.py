"""gunicorn's access log without the secrets some paths carry.

A subscription token or a setup token in a log line is as good as the link
itself: anyone who reads the log could import the client's VPN or make an
admin. They are cut to their first characters, enough to tell them apart.
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger

SECRET_PATH = re.compile(r"(/(?:sub|setup)/)([A-Za-z0-9_-]{4})[A-Za-z0-9_-]*")


def mask_paths(text: str) -> str:
    return SECRET_PATH.sub(r"\1\2…", text)


class _MaskPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_paths(record.getMessage()), ()
        return True


class AccessLogger(Logger):
    """Masks the paths in the access log and in gunicorn's error log
    ("Error handling request GET /sub/…")."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.error_log.addFilter(_MaskPaths())

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: mask_paths(v) if isinstance(v, str) else v for k, v in atoms.items()}
