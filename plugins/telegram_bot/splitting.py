"""Cutting long text into messages Telegram accepts.

Telegram allows 4096 characters per message after entity parsing and counts
them in UTF-16 units (an emoji outside the BMP is 2). We count the HTML as
written, which is never less than what Telegram counts, so every chunk fits.
Cuts fall on line breaks; our texts keep each HTML tag within one line, so a
chunk never ends inside one. Only a single line longer than a message is cut
inside, at a space if there is one, never inside a tag or an entity.
"""

from __future__ import annotations

MESSAGE_LIMIT = 4096


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Chunks of at most `limit` UTF-16 units, none of them blank."""
    chunks: list[str] = []
    lines: list[str] = []
    size = 0
    for line in text.split("\n"):
        for piece in _fit(line, limit):
            cost = utf16_len(piece) + (1 if lines else 0)  # the joining newline
            if lines and size + cost > limit:
                chunks.append("\n".join(lines))
                lines, size = [], 0
                cost = utf16_len(piece)
            lines.append(piece)
            size += cost
    chunks.append("\n".join(lines))
    return [chunk.strip("\n") for chunk in chunks if chunk.strip()]


def _fit(line: str, limit: int) -> list[str]:
    """The line itself, or pieces of it that each fit in a message."""
    pieces = []
    while utf16_len(line) > limit:
        cut = _cut(line, limit)
        pieces.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    pieces.append(line)
    return pieces


def _cut(line: str, limit: int) -> int:
    """Where to cut a too-long line: an index in code points."""
    units = end = 0
    for index, char in enumerate(line):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            break
        end = index + 1
    head = line[:end]
    for opener, closer in (("<", ">"), ("&", ";")):
        start = head.rfind(opener)
        if start > head.rfind(closer):
            end = min(end, start)  # don't cut a tag or an entity in two
    space = line.rfind(" ", 0, end)
    if space > end // 2:
        end = space
    return max(end, 1)
