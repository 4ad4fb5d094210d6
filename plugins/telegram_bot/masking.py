"""Keeping the bot token out of logs: it is in every request URL the library makes."""

from __future__ import annotations

import logging
import traceback

from webpanel.settings import mask


class Redactor:
    """Replaces the token (and its secret half alone) with its masked form."""

    def __init__(self, token: str) -> None:
        self.masked = mask(token)
        secret = token.partition(":")[2]
        # Longest first: the whole token, then the half after the colon,
        # which is what a percent-encoded URL still shows verbatim.
        self.secrets = [s for s in (token, secret) if len(s) >= 8]

    def __call__(self, text: object) -> str:
        result = str(text)
        for secret in self.secrets:
            result = result.replace(secret, self.masked)
        return result


class TokenFilter(logging.Filter):
    """Masks the token in a record's message, arguments and traceback.

    Added to each logger of this package (and the library's) while the bot
    runs: a filter on a parent logger does not see its children's records.
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            record.exc_info = None
        if record.exc_text:
            text += "\n" + record.exc_text
            record.exc_text = None
        record.msg, record.args = self.redact(text).rstrip("\n"), ()
        return True


def guard_loggers(redact: Redactor, names: list[str]) -> TokenFilter:
    """Filter those loggers; keep the library's and urllib3's above DEBUG."""
    token_filter = TokenFilter(redact)
    for name in names:
        logging.getLogger(name).addFilter(token_filter)
    for noisy in ("telebot", "urllib3"):
        logger = logging.getLogger(noisy)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    return token_filter


def unguard_loggers(token_filter: TokenFilter, names: list[str]) -> None:
    for name in names:
        logging.getLogger(name).removeFilter(token_filter)
