"""Our clients and Xray's config.json: write them into it, or import from it.

Every database read and write of this feature is here; the file side is
xray.config, which knows nothing of the database.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from dataclasses import field

from webpanel.bulk import upsert
from webpanel.models import IN_XRAY
from webpanel.models import Client
from webpanel.models import Counter
from webpanel.models import Node
from webpanel.models import Removal
from webpanel.models import State
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.nodes import gateway
from webpanel.nodes import on_node
from webpanel.services import audit
from webpanel.services import sync
from webpanel.services.clients import ClientError
from webpanel.services.clients import _next_email
from webpanel.services.clients import clean_name
from webpanel.services.clients import name_key
from webpanel.settings import current_settings
from webpanel.signals import client_changed
from xray.client import XrayError
from xray.client import user_traffic
from xray.config import ConfigError
from xray.config import ImportedUser
from xray.config import load_config
from xray.config import uuid_key
from xray.config import valid_email_key
from xray.config import vless_clients
from xray.config import with_users
from xray.config import write_config

log = logging.getLogger(__name__)

# The keys we hand out ourselves (see clients._next_email).
OUR_KEY = re.compile(r"c([0-9]+)")
NAME_MAX = Client.name.max_length


@dataclass(frozen=True)
class ImportedClient:
    name: str
    email: str  # our key for it now
    uuid: str
    source_email: str  # the email it had in the config file
    tag: str

    @property
    def rekeyed(self) -> bool:
        return self.email != self.source_email


@dataclass(frozen=True)
class SkippedClient:
    email: str
    uuid: str
    tag: str
    reason: str


@dataclass
class ImportReport:
    created: list[ImportedClient] = field(default_factory=list)
    skipped: list[SkippedClient] = field(default_factory=list)


# Writing our users into the file


def write_users_to_config(
    path: str | os.PathLike[str], tag: str, node: Node | None = None
) -> int:
    """Put every client a node should hold into the inbound `tag`; return how many.

    The node defaults to the first one. Clients the file has that are not
    ours stay; ours that should not be in Xray (disabled, limited, expired,
    deleted, re-keyed, or not on this node) leave it.
    """
    node = node or Node.select().order_by(Node.id).get()
    belongs = Client.status.in_(IN_XRAY) & on_node(node)
    clients = Client.select().where(belongs).order_by(Client.id)
    users = [sync.xray_user(c, node) for c in clients]
    known = {email.lower() for (email,) in Client.select(Client.email).tuples()}
    known |= {email.lower() for (email,) in Removal.select(Removal.email).tuples()}
    our_uuids = [uuid for (uuid,) in Client.select(Client.uuid).tuples()]

    def managed(email: str) -> bool:
        return email.lower() in known or OUR_KEY.fullmatch(email.lower()) is not None

    config = load_config(path)
    try:
        config = with_users(config, tag, users, managed, our_uuids)
    except ConfigError as error:
        raise ConfigError(path, error.problem) from None
    write_config(path, config)
    log.info("wrote %d users into %s (inbound %s)", len(users), path, tag)
    return len(users)


# Importing clients from the file


def import_from_config(
    path: str | os.PathLike[str], tag: str | None = None, actor: str = "import"
) -> ImportReport:
    """Make a client of each VLESS user in the file that we don't have yet.

    All or nothing: the clients are saved in one transaction, then pushed
    to Xray. A user whose email can't be our key gets a new one, and its old
    email is removed from every node, so one UUID never has two emails.
    """
    config = load_config(path)
    try:
        found = vless_clients(config, tag)
    except ConfigError as error:
        raise ConfigError(path, error.problem) from None

    report = ImportReport()
    made = []
    counted = _counters_now()
    with db.atomic():
        plan = _ImportPlan(report)
        plan.skip_sequence_past(found)
        for user in found:
            client = plan.take(user)
            if client is not None:
                made.append(client)
                audit.record(client, "imported", actor, f"from {os.fspath(path)}")
        _seed_counters(counted, {c.email for c in made})
    log.info(
        "imported %d clients from %s by %s (%d skipped)",
        len(report.created),
        path,
        actor,
        len(report.skipped),
    )

    timeout = current_settings().xray_timeout
    for client, imported in zip(made, report.created, strict=True):
        _push(client, imported, timeout)
        client_changed.send(client, event="created", actor=actor)
    return report


def _counters_now() -> dict[Node, dict[str, int]]:
    """Each reachable node's user counters, read before the import."""
    timeout = current_settings().xray_timeout
    found = {}
    for node in Node.select():
        try:
            found[node] = gateway(node, timeout).query_stats("user>>>")
        except XrayError:
            continue  # unreachable: its first poll counts their past traffic
    return found


def _seed_counters(counted: dict[Node, dict[str, int]], emails: set[str]) -> None:
    """Take an imported user's traffic so far as already counted, not as new."""
    for node, stats in counted.items():
        rows = [
            (node.api_address, email, up, down)
            for email, (up, down) in user_traffic(stats).items()
            if email in emails
        ]
        keys = [Counter.address, Counter.email]
        upsert(Counter, keys, [Counter.uplink, Counter.downlink], rows)


class _ImportPlan:
    """Decides, user by user, inside the import's transaction."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        rows = list(Client.select(Client.email, Client.uuid).tuples())
        self.emails = {email.lower(): email for email, _ in rows}
        self.uuids = {uuid_key(uuid): email for email, uuid in rows}
        # Emails to be removed from Xray: never ours to keep as keys.
        self.retired = {
            email.lower() for (email,) in Removal.select(Removal.email).tuples()
        }
        self.nodes = list(Node.select())
        self.unnamed = 0

    def take(self, user: ImportedUser) -> Client | None:
        reason = self._refusal(user)
        if reason:
            self.report.skipped.append(
                SkippedClient(user.email, user.uuid, user.tag, reason)
            )
            return None

        email = user.email
        if self._needs_new_key(email):
            email = _next_email()
            if user.email:
                self._retire(user.email)

        client = self._create(user, email)
        self.emails[email.lower()] = email
        self.uuids[uuid_key(user.uuid)] = email
        self.report.created.append(
            ImportedClient(client.name, email, user.uuid, user.email, user.tag)
        )
        return client

    def _refusal(self, user: ImportedUser) -> str:
        if user.problem:
            return user.problem
        holder = self.uuids.get(uuid_key(user.uuid))
        if holder is not None:
            return f"its UUID is already used by {holder}"
        holder = self.emails.get(user.email.lower()) if user.email else None
        if holder is not None:
            return f"its email is already the key of a client ({holder})"
        if len(user.flow) > Client.flow.max_length:
            return "its flow is too long"
        return ""

    def _needs_new_key(self, email: str) -> bool:
        return (
            valid_email_key(email) is not None
            or len(email) > Client.email.max_length
            or OUR_KEY.fullmatch(email) is not None
            or email.lower() in self.retired
        )

    def _retire(self, email: str) -> None:
        """Leave tombstones, so recovery removes the old email everywhere.

        Removing an email frees its UUID in the daemon even when another
        email has taken it over since, so the old one has to go first.
        """
        self.retired.add(email.lower())
        for node in self.nodes:
            Removal.insert(node=node, email=email).on_conflict_ignore().execute()

    def skip_sequence_past(self, users: list[ImportedUser]) -> None:
        """Never hand out a c<N> that the file uses, now or later.

        The daemon keeps a removed user's counters, and a re-added email
        continues from them; and the file's own c<N> must not meet ours.
        """
        numbers = [
            int(match.group(1))
            for user in users
            if (match := OUR_KEY.fullmatch(user.email.lower()))
        ]
        if not numbers:
            return
        State.insert(key="email_seq", value=0).on_conflict_ignore().execute()
        State.update(value=max(numbers)).where(
            State.key == "email_seq", State.value < max(numbers)
        ).execute()

    def _create(self, user: ImportedUser, email: str) -> Client:
        now = utcnow()
        name = self._free_name(user.email)
        return Client.create(
            name=name,
            name_key=name_key(name),
            email=email,
            uuid=user.uuid,
            sub_token=secrets.token_urlsafe(24),
            flow=user.flow,
            created_at=now,
            updated_at=now,
        )

    def _free_name(self, email: str) -> str:
        base = ""
        # An email like c5 (ours) can't be a name: "imported c5" can.
        for candidate in (email, f"imported {email}") if email.strip() else ():
            try:
                base = clean_name(candidate)
                break
            except ClientError:
                continue
        if not base:
            self.unnamed += 1
            base = f"imported {self.unnamed}"
        for number in range(1, 10_000):
            suffix = "" if number == 1 else f" ({number})"
            name = base[: NAME_MAX - len(suffix)] + suffix
            if not Client.select().where(Client.name_key == name_key(name)).exists():
                return name
        raise RuntimeError(f"no free name for {base!r}")


def _push(client: Client, imported: ImportedClient, timeout: float) -> None:
    """Into Xray, after the commit: the old email out first, then the client in."""
    old = imported.source_email
    if imported.rekeyed and old and sync.forget_client(old, timeout):
        Removal.delete().where(Removal.email == old).execute()
    sync.apply_client(client, timeout)
