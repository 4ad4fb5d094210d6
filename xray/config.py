"""Xray's config.json: read it, list its VLESS users, put ours in, write it back.

Plain dicts in and out, no Flask, no database. Reading follows the daemon's
own loader (checked in Xray-core's infra/conf): `//`, `/* */` and `#`
comments outside strings are ignored, and object keys match ignoring case,
the last one winning. Writing keeps everything but the one inbound's
client list; comments are not kept.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import uuid as uuidlib
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xray.client import User

log = logging.getLogger(__name__)

EMAIL_MAX = 64
_HEX = frozenset("0123456789abcdefABCDEF")
_UUID_GROUPS = (8, 4, 4, 4, 12)


class ConfigError(Exception):
    """A config file can't be read, understood or written: says which and why."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem


@dataclass(frozen=True)
class ImportedUser:
    """One client of a VLESS inbound, as the config file has it.

    `uuid` is the id as the daemon reads it (canonical, lowercase); when the
    entry can't be used, `uuid` holds whatever was there and `problem` says
    what is wrong with it.
    """

    email: str
    uuid: str
    flow: str = ""
    level: int = 0
    tag: str = ""
    problem: str = ""


# Reading


def load_config(path: str | os.PathLike[str]) -> dict:
    """Parse a config file the way the daemon does; ConfigError if it can't."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "no such file") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a config file") from None
    except OSError as error:
        raise ConfigError(path, f"cannot read it: {error.strerror}") from None

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            path, f"not UTF-8 text (bad byte at offset {error.start})"
        ) from None

    try:
        config = json.loads(strip_comments(text), parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        # Comments are replaced by nothing but their line breaks are kept,
        # so the line number points into the original file.
        raise ConfigError(
            path, f"invalid JSON at line {error.lineno}: {error.msg}"
        ) from None
    except ValueError as error:
        raise ConfigError(path, f"invalid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(path, "the top level must be a JSON object")
    return config


def has_comments(path: str | os.PathLike[str]) -> bool:
    """True when writing the file back would drop comments from it."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return strip_comments(text) != text


def strip_comments(text: str) -> str:
    """Drop `//`, `/* */` and `#` comments outside quoted strings.

    Mirrors the daemon's reader: line breaks inside comments are kept, and
    both double- and single-quoted runs count as strings (a single-quoted
    one is still invalid JSON, as it is for the daemon).
    """
    out: list[str] = []
    quote = ""  # the quote character of the string we are in, if any
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = ""
            out.append(ch)
        elif ch in "\"'":
            quote = ch
            out.append(ch)
        elif ch == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end  # the line break itself stays
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            comment = text[i:] if end < 0 else text[i : end + 2]
            out.append("\n" * comment.count("\n"))
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def vless_clients(config: dict, tag: str | None = None) -> list[ImportedUser]:
    """The clients of every VLESS inbound, or of the one tagged `tag`."""
    if tag is not None:
        inbounds = [_find_vless_inbound(config, tag)]
    else:
        inbounds = [i for i in _inbounds(config) if _is_vless(i)]

    users = []
    for inbound in inbounds:
        inbound_tag = _text(_field(inbound, "tag"))
        for entry in _clients(inbound):
            users.append(_imported_user(entry, inbound_tag))
    return users


def _imported_user(entry: Any, tag: str) -> ImportedUser:
    if not isinstance(entry, dict):
        return ImportedUser("", "", tag=tag, problem="the entry is not an object")

    email, raw_id = _field(entry, "email", ""), _field(entry, "id", "")
    flow, level = _field(entry, "flow", ""), _field(entry, "level", 0)
    if not isinstance(email, str):
        return ImportedUser("", str(raw_id), tag=tag, problem="email is not text")
    if not isinstance(raw_id, str):
        return ImportedUser(email, "", tag=tag, problem="id is not text")
    if not isinstance(flow, str):
        return ImportedUser(email, raw_id, tag=tag, problem="flow is not text")
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        return ImportedUser(email, raw_id, tag=tag, problem="level is not a number")

    uuid = xray_uuid(raw_id)
    if uuid is None:
        problem = f"id {_shorten(raw_id)!r} is not a UUID"
        return ImportedUser(email, raw_id, flow, level, tag, problem)
    return ImportedUser(email, uuid, _clean_flow(flow), level, tag)


def _clean_flow(flow: str) -> str:
    # The daemon reads "none" (alone or in a comma list) as no flow.
    parts = [p.strip() for p in flow.split(",") if p.strip() not in ("", "none")]
    return parts[-1] if parts else ""


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# UUIDs as the daemon reads them


def xray_uuid(text: str) -> str | None:
    """The UUID the daemon makes of an `id`, canonical; None if it refuses it.

    32 to 36 characters are read as hex groups (dashes optional); 1 to 30
    bytes of any other text map to a UUIDv5 in the all-zero namespace,
    which is what Xray does (v2ray 4.34 refuses such ids).
    """
    size = len(text.encode("utf-8"))
    if 32 <= size <= 36:
        return _parse_hex_uuid(text)
    if 1 <= size <= 30:
        return str(uuidlib.uuid5(uuidlib.UUID(int=0), text))
    return None


def _parse_hex_uuid(text: str) -> str | None:
    rest, digits = text, []
    for size in _UUID_GROUPS:
        rest = rest.removeprefix("-")
        group = rest[:size]
        if len(group) < size or not set(group) <= _HEX:
            return None
        digits.append(group)
        rest = rest[size:]
    # Like the daemon, ignore what follows the fifth group.
    return "-".join(digits).lower()


def uuid_key(uuid: str) -> str:
    """What Xray's VLESS user table keys a UUID by.

    Its validator (v25) zeroes bytes 6 and 7, the third group: two UUIDs
    that differ only there are the same user to the daemon.
    """
    try:
        canonical = str(uuidlib.UUID(uuid))
    except ValueError:
        return uuid.lower()
    return canonical[:14] + "0000" + canonical[18:]


# Emails


def valid_email_key(email: str) -> str | None:
    """Why `email` is unsafe as an Xray user key, or None when it is fine."""
    if not email:
        return "it is empty (the daemon can never remove such a user)"
    if len(email) > EMAIL_MAX:
        return f"it is longer than {EMAIL_MAX} characters"
    if not email.isascii():
        return "it has non-ASCII characters"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in email):
        return "it has control characters"
    if any(ch.isspace() for ch in email):
        return "it has whitespace"
    if email != email.lower():
        return (
            "it has uppercase letters (the daemon matches emails ignoring "
            "case, but counter names keep it)"
        )
    if ">>>" in email:
        return "it contains '>>>', which separates counter name parts"
    return None


# Putting our users in


def with_users(
    config: dict,
    tag: str,
    users: Iterable[User],
    managed: Callable[[str], bool],
    our_uuids: Iterable[str] = (),
) -> dict:
    """A copy of `config` whose inbound `tag` holds `users` plus the rest.

    An existing client stays unless `managed(email)` says it is ours, its
    email is one of our users' (ignoring case, as the daemon does), or its
    UUID is one of ours: in `users` or `our_uuids`. Two emails on one UUID
    would let the daemon hand one user's connections to the other.
    Everything outside that client list is kept as it was.
    """
    users = list(users)
    new = copy.deepcopy(config)
    inbound = _find_vless_inbound(new, tag)

    our_emails = {u.email.lower() for u in users}
    taken = {uuid_key(u) for u in [*(u.uuid for u in users), *our_uuids]}
    kept, dropped = [], []
    for entry in _clients(inbound):
        user = _imported_user(entry, tag)
        mine = user.email.lower() in our_emails or managed(user.email)
        if mine:
            continue
        if not user.problem and uuid_key(user.uuid) in taken:
            dropped.append(user.email)
            continue
        kept.append(entry)
    if dropped:
        log.warning(
            "inbound %s: dropped %d client(s) holding one of our UUIDs: %s",
            tag,
            len(dropped),
            ", ".join(repr(e) for e in dropped[:10]),
        )

    settings = _field(inbound, "settings")
    if not isinstance(settings, dict):
        settings = {}
        inbound[_key(inbound, "settings") or "settings"] = settings
    ours = [_client_entry(u) for u in users]
    settings[_key(settings, "clients") or "clients"] = kept + ours
    return new


def _client_entry(user: User) -> dict:
    entry: dict[str, Any] = {"id": user.uuid, "email": user.email}
    if user.flow:
        entry["flow"] = user.flow
    entry["level"] = user.level
    return entry


# Writing


def write_config(path: str | os.PathLike[str], config: dict) -> None:
    """Replace the file atomically: readers see the old file or the new one.

    The new file keeps the old one's mode (and owner, when we are root); a
    symlink is followed, so the file it points to is the one replaced.
    """
    target = Path(os.path.realpath(path))
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    try:
        old = target.stat()
    except FileNotFoundError:
        old = None
    except OSError as error:
        raise ConfigError(path, f"cannot write it: {error.strerror}") from None

    try:
        fd, temp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise ConfigError(path, f"cannot write it: {error.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        _copy_owner_and_mode(temp, old)
        os.replace(temp, target)
    except OSError as error:
        _unlink_quietly(temp)
        raise ConfigError(path, f"cannot write it: {error.strerror or error}") from None
    except BaseException:
        _unlink_quietly(temp)
        raise
    _fsync_dir(target.parent)


def _copy_owner_and_mode(temp: str, old: os.stat_result | None) -> None:
    if old is None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        return
    if os.geteuid() == 0:
        os.chown(temp, old.st_uid, old.st_gid)
    os.chmod(temp, old.st_mode & 0o7777)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems can't, and that's fine.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Walking the config the way the daemon reads it


def _field(obj: dict, name: str, default: Any = None) -> Any:
    """A key matched ignoring case, the last match winning, as Go's JSON does."""
    key = _key(obj, name)
    return default if key is None else obj[key]


def _key(obj: dict, name: str) -> str | None:
    """The key under which the daemon would find `name`, if there is one."""
    found = None
    for key in obj:
        if key.lower() == name:
            found = key
    return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _inbounds(config: dict) -> list[dict]:
    inbounds = _field(config, "inbounds")
    if not isinstance(inbounds, list):
        return []
    return [i for i in inbounds if isinstance(i, dict)]


def _is_vless(inbound: dict) -> bool:
    return _text(_field(inbound, "protocol")).lower() == "vless"


def _find_vless_inbound(config: dict, tag: str) -> dict:
    # The file's name is not known here: callers that know it say it.
    path = "config"
    matches = [i for i in _inbounds(config) if _field(i, "tag") == tag]
    if not matches:
        raise ConfigError(path, f"no inbound tagged {tag!r}")
    if len(matches) > 1:
        raise ConfigError(path, f"{len(matches)} inbounds are tagged {tag!r}")
    inbound = matches[0]
    if not _is_vless(inbound):
        protocol = _text(_field(inbound, "protocol")) or "no protocol"
        raise ConfigError(path, f"inbound {tag!r} is {protocol}, not vless")
    return inbound


def _clients(inbound: dict) -> list:
    settings = _field(inbound, "settings")
    if not isinstance(settings, dict):
        return []
    clients = _field(settings, "clients")
    return clients if isinstance(clients, list) else []
