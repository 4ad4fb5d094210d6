"""What the API takes and gives: pydantic models, checked and documented."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from typing import Literal

from pydantic import AfterValidator
from pydantic import AwareDatetime
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import ValidatorFunctionWrapHandler
from pydantic import WrapValidator
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from webpanel.services.inputs import GB
from webpanel.services.inputs import MAX_DAYS
from webpanel.services.inputs import MAX_LIMIT_GB
from webpanel.services.inputs import MIN_LIMIT
from webpanel.services.inputs import NAME_MAX
from webpanel.services.inputs import hidden_runs

# What to say when a value fails its field's pattern.
PATTERN_MESSAGES = {
    "name": "Name must have a visible character and no control or invisible ones.",
    "node": "Node names are lowercase letters, digits and dashes.",
    "cursor": "Not a cursor this API gave out.",
}

Status = Literal["active", "on_hold", "disabled", "limited", "expired"]
ResetStrategy = Literal["none", "day", "week", "month", "year"]
NodeState = Literal["unchecked", "offline", "online", "out_of_sync"]
NodeName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
# A name holds no control characters and more than blanks (the service also
# trims it and checks its length after Unicode normalisation).
HIDDEN = "".join(
    re.escape(first) if first == last else f"{re.escape(first)}-{re.escape(last)}"
    for first, last in hidden_runs()
)
NAME_PATTERN = f"^[^{HIDDEN}]*[^\\s{HIDDEN}][^{HIDDEN}]*$"
ClientName = Annotated[
    str,
    Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN),
]


def _whole(value: object) -> object:
    # JSON Schema counts 30.0 as an integer; strict pydantic would not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The bounds go before the validator, or they leave the JSON schema.
Limit = Annotated[
    int,
    Field(
        ge=MIN_LIMIT,
        le=MAX_LIMIT_GB * GB,
        description="Data limit in bytes for each period; null for unlimited.",
    ),
    BeforeValidator(_whole),
]
Days = Annotated[int, Field(ge=1, le=MAX_DAYS), BeforeValidator(_whole)]
# Years 1970-8999: the panel keeps expiries before the year 9000, and a date
# at the ends of the calendar would overflow once moved to UTC.
YEARS = r"^(19[7-9][0-9]|[2-8][0-9]{3})-"


def _in_years(moment: datetime) -> datetime:
    if not 1970 <= moment.year <= 8999:
        raise ValueError("Expiry must be in the years 1970 to 8999")
    return moment


Expiry = Annotated[
    AwareDatetime,
    AfterValidator(_in_years),
    Field(
        description="When access ends (RFC 3339 with an offset); null for never.",
        json_schema_extra={"pattern": YEARS},
    ),
]


def _one_nodes_error(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    # Either form may fail; one message for the field beats one per form.
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "nodes", 'Send "all" or a list of node names (a-z, 0-9, -)'
        ) from None


Nodes = Annotated[
    Literal["all"] | Annotated[list[NodeName], Field(min_length=1)],
    WrapValidator(_one_nodes_error),
    Field(description='"all", or the names of the nodes the client is on.'),
]


class Input(BaseModel):
    # Unknown fields are refused, not dropped: a typo must not pass silently.
    model_config = ConfigDict(extra="forbid")


# Fields that may be left out but not sent as null have a default of None
# and a type without null: pydantic refuses a null, the schema says so.
ONE_EXPIRY = {
    "not": {
        "anyOf": [
            {"required": ["days", "expiry"]},
            {"required": ["days", "on_hold_days"]},
            {"required": ["expiry", "on_hold_days"]},
        ]
    }
}


class ClientCreate(Input):
    """At most one of days, expiry and on_hold_days; none of them: no expiry."""

    model_config = ConfigDict(json_schema_extra=ONE_EXPIRY)

    name: ClientName
    limit: Limit | None = None
    days: Days = Field(None, description="Access ends this many days from now.")
    expiry: Expiry = Field(
        None, description="When access ends (RFC 3339 with an offset)."
    )
    on_hold_days: Days = Field(
        None, description="On hold: access ends this many days after the first traffic."
    )
    reset_strategy: ResetStrategy = Field(
        "none", description="How often the used bytes go back to zero."
    )
    nodes: Nodes = "all"

    @model_validator(mode="after")
    def _one_expiry(self) -> ClientCreate:
        given = [
            f for f in ("days", "expiry", "on_hold_days") if f in self.model_fields_set
        ]
        if len(given) > 1:
            raise ValueError(f"Give only one of {', '.join(given)}")
        return self


class ClientEdit(Input):
    """Only the fields sent change; limit and expiry may be null (none)."""

    name: ClientName = None
    limit: Limit | None = None
    expiry: Expiry | None = None
    reset_strategy: ResetStrategy = None
    nodes: Nodes = None


class Extend(Input):
    days: Days


class Client(BaseModel):
    name: str
    email: str = Field(description="Xray's key for the client (c12); never reused.")
    status: Status
    pending: bool = Field(description="Saved, not yet applied on every node.")
    uuid: str
    uplink: int = Field(description="Bytes sent this period.")
    downlink: int = Field(description="Bytes received this period.")
    used: int
    limit: int | None
    expiry: datetime | None
    on_hold_days: int | None
    reset_strategy: ResetStrategy
    next_reset: datetime | None
    used_total: int = Field(description="Bytes all time, never reset.")
    last_traffic: datetime | None
    created: datetime
    link: str | None = Field(description="The share link on the first node.")
    links: dict[str, str] = Field(description="Node name → share link.")
    subscription_url: str | None
    nodes: Literal["all"] | list[str]


class ClientPage(BaseModel):
    items: list[Client]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def _digits(value: object) -> object:
    # Query values are text; Python would also read "1_0" or " 10" as 10.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("Input should be a whole number")
    return value


QueryCount = Annotated[int, BeforeValidator(_digits)]


class ClientQuery(Input):
    status: Status | None = Field(None, description="Only clients in this status.")
    search: str | None = Field(
        None,
        max_length=NAME_MAX,
        description="Part of the name (any case), or a whole email key or UUID.",
    )
    node: NodeName | None = Field(None, description="Only clients on this node.")
    limit: QueryCount = Field(100, ge=1, le=500, description="Clients per page.")
    cursor: str | None = Field(
        None, pattern=r"^[0-9]{1,18}$", description="From the last page's next_cursor."
    )


class UsageQuery(Input):
    period: Literal["hour", "day"] = Field("day", description="Bucket size.")
    count: QueryCount = Field(
        30, ge=1, le=366, description="How many buckets, newest last."
    )


class UsagePoint(BaseModel):
    start: datetime
    uplink: int
    downlink: int


class NodeUsage(BaseModel):
    node: str
    uplink: int
    downlink: int


class Usage(BaseModel):
    period: Literal["hour", "day"]
    points: list[UsagePoint]
    nodes: list[NodeUsage] = Field(description="All-time bytes on each node.")


class Node(BaseModel):
    name: str
    api_address: str
    flavor: str
    inbound_tag: str
    state: NodeState
    online: bool
    in_sync: bool
    last_error: str
    public_host: str
    public_port: int
    uptime: int | None = Field(description="Seconds the daemon had run when last seen.")
    last_seen: datetime | None
    synced: datetime | None
    restored_count: int


class NodeList(BaseModel):
    items: list[Node]


class Stats(BaseModel):
    clients_total: int
    clients_by_status: dict[str, int]
    traffic_today: int = Field(description="Bytes since 00:00 UTC, all nodes.")
    nodes_total: int
    nodes_online: int
