"""Database models. Times are naive UTC datetimes; bytes are integers."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import TypeVar

from flask_login import UserMixin
from peewee import BigIntegerField
from peewee import BooleanField
from peewee import CharField
from peewee import DatabaseProxy
from peewee import DateTimeField
from peewee import ForeignKeyField
from peewee import IntegerField
from peewee import Model
from peewee import TextField

db = DatabaseProxy()

T = TypeVar("T")

IN_XRAY = ("active", "on_hold")
STATUSES = ("active", "on_hold", "disabled", "limited", "expired")
RESET_STRATEGIES = ("none", "day", "week", "month", "year")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Slices of at most `size`, for statements with a bounded parameter count."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def utcnow() -> datetime:
    """Naive UTC: what every DateTimeField stores."""
    return datetime.now(UTC).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = db


class SchemaVersion(BaseModel):
    version = IntegerField()
    applied_at = DateTimeField(default=utcnow)


class State(BaseModel):
    """Small named values the panel keeps for itself (e.g. the email sequence)."""

    key = CharField(max_length=64, primary_key=True)
    value = BigIntegerField(default=0)


class Admin(UserMixin, BaseModel):
    username = CharField(max_length=64, unique=True)
    password_hash = CharField(max_length=255)
    created_at = DateTimeField(default=utcnow)


class Node(BaseModel):
    name = CharField(max_length=64, unique=True)
    api_address = CharField(max_length=255)
    flavor = CharField(max_length=16, default="xray")
    inbound_tag = CharField(max_length=64, default="vless-in")
    flow = CharField(max_length=32, default="xtls-rprx-vision")  # "" for none
    # What this node's links carry.
    public_host = CharField(max_length=255, default="")
    public_port = IntegerField(default=8443)
    reality_sni = CharField(max_length=255, default="")
    reality_public_key = CharField(max_length=64, default="")
    reality_short_id = CharField(max_length=16, default="")
    reality_fingerprint = CharField(max_length=32, default="chrome")
    online = BooleanField(default=False)
    in_sync = BooleanField(default=False)
    last_error = TextField(default="")
    # What recovery saw last: a lower uptime than expected means a restart.
    seen_uptime = IntegerField(null=True)
    seen_at = DateTimeField(null=True)
    # What the last committed poll saw; counter deltas are relative to it.
    poll_uptime = IntegerField(null=True)
    poll_at = DateTimeField(null=True)
    synced_at = DateTimeField(null=True)
    restored_count = IntegerField(default=0)

    @property
    def state(self) -> str:
        if self.seen_at is None and self.poll_at is None and not self.last_error:
            return "unchecked"
        if not self.online:
            return "offline"
        return "online" if self.in_sync else "out_of_sync"


class Client(BaseModel):
    name = CharField(max_length=64)
    name_key = CharField(max_length=64, unique=True)  # casefolded name
    email = CharField(max_length=32, unique=True)  # Xray's key; never changes
    uuid = CharField(max_length=36, unique=True)
    sub_token = CharField(max_length=64, unique=True)
    flow = CharField(max_length=32, default="")
    status = CharField(max_length=16, default="active", index=True)
    data_limit = BigIntegerField(null=True)  # bytes; None = unlimited
    expire_at = DateTimeField(null=True, index=True)  # None = never
    # Usage of the current period: what the data limit applies to.
    uplink = BigIntegerField(default=0)
    downlink = BigIntegerField(default=0)
    used_total = BigIntegerField(default=0)  # all time, never reset
    last_traffic_at = DateTimeField(null=True)
    # On hold: the expiry clock starts at the first traffic, for this many days.
    on_hold_days = IntegerField(null=True)
    reset_strategy = CharField(max_length=8, default="none")
    next_reset_at = DateTimeField(null=True, index=True)
    pending = BooleanField(default=False)  # saved, not yet applied in Xray
    all_nodes = BooleanField(default=True)  # else only its ClientNode rows
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    @property
    def used(self) -> int:
        return self.uplink + self.downlink

    @property
    def in_xray(self) -> bool:
        return self.status in IN_XRAY


class ClientNode(BaseModel):
    """A node chosen for a client that is not on every node."""

    client = ForeignKeyField(Client, on_delete="CASCADE", backref="node_links")
    node = ForeignKeyField(Node, on_delete="CASCADE")

    class Meta:
        indexes = ((("client", "node"), True),)


class NodeUsage(BaseModel):
    """All-time bytes of a client on one node; the client's totals sum these."""

    client_id = IntegerField()
    node = ForeignKeyField(Node, on_delete="CASCADE")
    uplink = BigIntegerField(default=0)
    downlink = BigIntegerField(default=0)

    class Meta:
        indexes = ((("client_id", "node"), True),)


class Counter(BaseModel):
    """The last raw values of a user's two traffic counters in one daemon.

    Keyed by the daemon's API address, not the node row: a node removed and
    added again finds the daemon's counters where it left them, instead of
    counting their whole totals a second time.
    """

    address = CharField(max_length=255)
    email = CharField(max_length=64)
    uplink = BigIntegerField(default=0)
    downlink = BigIntegerField(default=0)

    class Meta:
        indexes = ((("address", "email"), True),)


class Removal(BaseModel):
    """A deleted client still to be removed from a node that was down."""

    node = ForeignKeyField(Node, on_delete="CASCADE")
    email = CharField(max_length=64)

    class Meta:
        indexes = ((("node", "email"), True),)


class Invite(BaseModel):
    """A one-time code that binds an outside account (a Telegram chat) to a client."""

    code = CharField(max_length=32, unique=True)
    client = ForeignKeyField(Client, on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)


class AuditEntry(BaseModel):
    """Who or what changed a client, and how."""

    at = DateTimeField(default=utcnow, index=True)
    actor = CharField(max_length=64)
    event = CharField(max_length=32)
    client_id = IntegerField(null=True, index=True)  # kept after a delete
    client_name = CharField(max_length=64, default="")
    detail = TextField(default="")


class UsageHour(BaseModel):
    """Bytes per client, node and hour (UTC), added to by every poll."""

    client_id = IntegerField()
    node = ForeignKeyField(Node, on_delete="CASCADE")
    hour = DateTimeField()
    uplink = BigIntegerField(default=0)
    downlink = BigIntegerField(default=0)

    class Meta:
        indexes = ((("client_id", "node", "hour"), True), (("hour",), False))


class UsageDay(BaseModel):
    """The same, per day (UTC): kept far longer than the hours."""

    client_id = IntegerField()
    node = ForeignKeyField(Node, on_delete="CASCADE")
    day = DateTimeField()
    uplink = BigIntegerField(default=0)
    downlink = BigIntegerField(default=0)

    class Meta:
        indexes = ((("client_id", "node", "day"), True), (("day",), False))


class ApiKey(BaseModel):
    """A key for the JSON API. Only its SHA-256 is kept; the key is shown once."""

    name = CharField(max_length=64)
    prefix = CharField(max_length=16)  # the key's start, to tell keys apart
    key_hash = CharField(max_length=64, unique=True)
    scope = CharField(max_length=8, default="read")  # read or write
    webhook_url = CharField(max_length=2048, default="")
    webhook_secret = CharField(max_length=64, default="")
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class WebhookDelivery(BaseModel):
    """One event for one key's webhook: sent, retried with back-off, or given up."""

    key = ForeignKeyField(ApiKey, on_delete="CASCADE", backref="deliveries")
    event = CharField(max_length=32)
    body = TextField()  # the exact bytes signed and sent
    created_at = DateTimeField(default=utcnow)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(null=True, index=True)  # None: nothing left to do
    delivered_at = DateTimeField(null=True)
    last_error = TextField(default="")


MODELS = [
    SchemaVersion,
    State,
    Admin,
    Node,
    Client,
    ClientNode,
    NodeUsage,
    Counter,
    Removal,
    Invite,
    AuditEntry,
    UsageHour,
    UsageDay,
    ApiKey,
    WebhookDelivery,
]
