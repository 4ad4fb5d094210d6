"""Clients through the API: list, read, create, change, delete, act."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime

from flask import Response
from flask import g
from flask import url_for

from webpanel.api import api
from webpanel.api import schemas
from webpanel.api.problems import ApiProblem
from webpanel.models import Client
from webpanel.models import ClientNode
from webpanel.models import Node
from webpanel.services import clients as client_service
from webpanel.services import history
from webpanel.services import nodes as node_service
from webpanel.services.client_json import client_json
from webpanel.services.clients import DUPLICATE
from webpanel.services.clients import ClientGone
from webpanel.services.inputs import FieldError
from webpanel.services.inputs import name_key

CLIENT = {"client": "The client's name, email key (c12) or UUID."}
TAG = "clients"


def _on_client(method: str, suffix: str = "", **options) -> Callable:
    """Declare an operation on one client: /clients/<client>{suffix}."""
    rule = f"/clients/<client>{suffix}"
    return api.operation(method, rule, tag=TAG, path_params=CLIENT, **options)


def _find(key: str) -> Client:
    client = client_service.find_client(key)
    if client is None:
        raise ApiProblem(404, "There is no client with this name, email key or UUID.")
    return client


def _document(client: Client) -> schemas.Client:
    return schemas.Client.model_validate(client_json(client))


def _actor() -> str:
    return f"api:{g.api_key.name}"[:64]


def _refused(error: FieldError) -> ApiProblem:
    if isinstance(error, ClientGone):
        return ApiProblem(404, "The client was deleted meanwhile.")
    if error.errors.get("name") == DUPLICATE:
        return ApiProblem(409, DUPLICATE, errors=error.errors)
    return ApiProblem(422, "Some body fields are not valid.", errors=error.errors)


def _utc(moment: datetime | None) -> datetime | None:
    """An aware time from the API as the naive UTC the database keeps."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment else None


def _nodes(names: str | list[str] | None) -> list[Node] | None:
    """The nodes named, None for all; unknown names are a 422."""
    if names is None or names == "all":
        return None
    if not names:
        raise ApiProblem(
            422,
            "Some body fields are not valid.",
            errors={"nodes": 'Name at least one node, or "all".'},
        )
    found = {n.name: n for n in Node.select().where(Node.name.in_(names))}
    missing = [name for name in names if name not in found]
    if missing:
        raise ApiProblem(
            422,
            "Some body fields are not valid.",
            errors={"nodes": f"No node named {', '.join(missing)}."},
        )
    return [found[name] for name in dict.fromkeys(names)]


@api.operation(
    "GET",
    "/clients",
    tag=TAG,
    scope="read",
    query=schemas.ClientQuery,
    response=schemas.ClientPage,
)
def list_clients(query: schemas.ClientQuery):
    """List clients, oldest first, a page at a time

    Filter by status, node or a search term; follow `next_cursor` for more.
    """
    rows = Client.select().order_by(Client.id)
    if query.cursor:
        rows = rows.where(Client.id > int(query.cursor))
    if query.status:
        rows = rows.where(Client.status == query.status)
    if query.search:
        term = query.search.strip()
        rows = rows.where(
            Client.name_key.contains(name_key(term))
            | (Client.email == term.lower())
            | (Client.uuid == term.lower())
        )
    if query.node:
        if node_service.find_node(query.node) is None:
            raise ApiProblem(
                422,
                "Some query fields are not valid.",
                errors={"node": f"No node named {query.node}."},
            )
        chosen = (
            ClientNode.select(ClientNode.client)
            .join(Node)
            .where(Node.name == query.node)
        )
        rows = rows.where(Client.all_nodes | Client.id.in_(chosen))
    page = list(rows.limit(query.limit + 1))
    more = len(page) > query.limit
    page = page[: query.limit]
    return schemas.ClientPage(
        items=[_document(c) for c in page],
        next_cursor=str(page[-1].id) if more else None,
    )


@api.operation(
    "POST",
    "/clients",
    tag=TAG,
    scope="write",
    body=schemas.ClientCreate,
    response=schemas.Client,
    status=201,
    errors=(409,),
    link=("client", "$response.body#/email"),
)
def create_client(body: schemas.ClientCreate):
    """Create a client

    It is saved, then added to Xray on its nodes; if a node does not answer,
    the client is `pending` and the panel adds it when the node is back.
    """
    nodes = _nodes(body.nodes)
    try:
        client = client_service.create_client(
            body.name,
            data_limit=body.limit,
            days=body.days or body.on_hold_days,
            expire_at=_utc(body.expiry),
            on_hold=body.on_hold_days is not None,
            reset_strategy=body.reset_strategy,
            nodes=nodes,
            actor=_actor(),
        )
    except FieldError as error:
        raise _refused(error) from None
    location = url_for("api.get_client", client=client.email)
    return Response(
        _document(client).model_dump_json(),
        status=201,
        mimetype="application/json",
        headers={"Location": location},
    )


@_on_client("GET", scope="read", response=schemas.Client)
def get_client(client: str):
    """Read a client"""
    return _document(_find(client))


@_on_client(
    "PATCH",
    scope="write",
    body=schemas.ClientEdit,
    response=schemas.Client,
    errors=(409,),
)
def edit_client(client: str, body: schemas.ClientEdit):
    """Change a client

    Only the fields sent change; send `limit` or `expiry` as null to lift it.
    The status follows the new limits; a disabled client stays disabled.
    """
    found = _find(client)
    sent = body.model_fields_set
    nodes = _nodes(body.nodes) if "nodes" in sent else None
    changes: dict = {}
    if "name" in sent:
        changes["name"] = body.name
    if "limit" in sent:
        changes["data_limit"] = body.limit
    if "expiry" in sent:
        changes["expire_at"] = _utc(body.expiry)
    try:
        found = client_service.edit_client(
            found, **changes, reset_strategy=body.reset_strategy, actor=_actor()
        )
    except FieldError as error:
        raise _refused(error) from None
    if "nodes" in sent:
        found = node_service.set_client_nodes(found, nodes, actor=_actor())
    return _document(found)


@_on_client("DELETE", scope="write", status=204)
def delete_client(client: str):
    """Delete a client

    It is removed from Xray at once, or when its node is back.
    """
    client_service.delete_client(_find(client), actor=_actor())


def _action(name: str, summary: str, change) -> None:
    def act(client: str):
        return _document(change(_find(client), actor=_actor()))

    act.__name__ = name.replace("-", "_") + "_client"
    act.__doc__ = summary
    _on_client("POST", f"/{name}", scope="write", response=schemas.Client)(act)


_action(
    "enable",
    "Enable a client\n\nIt comes back unless a limit or expiry holds it.",
    client_service.enable_client,
)
_action(
    "disable",
    "Disable a client\n\nIt is removed from Xray until enabled.",
    client_service.disable_client,
)
_action(
    "reset",
    "Reset a client's usage for this period\n\nA limited client "
    "comes back; a disabled one stays disabled.",
    client_service.reset_usage,
)
_action(
    "regenerate-uuid",
    "Give a client a new UUID\n\nIts old links stop "
    "working; the subscription URL stays.",
    client_service.regenerate_uuid,
)
_action(
    "revoke-subscription",
    "Give a client a new subscription token\n\nThe old "
    "subscription URL answers 404 from now on.",
    client_service.revoke_sub_token,
)


@_on_client(
    "POST",
    "/extend",
    scope="write",
    body=schemas.Extend,
    response=schemas.Client,
    errors=(409,),
)
def extend_client(client: str, body: schemas.Extend):
    """Add days to a client's expiry

    Counted from now if it has passed; an expired client comes back. A client
    on hold gets more days from first use. A client that never expires has
    nothing to extend: 409.
    """
    try:
        changed = client_service.extend_client(_find(client), body.days, actor=_actor())
    except ClientGone as error:
        raise _refused(error) from None
    except FieldError as error:
        # Valid on its own, not possible for this client's expiry: a conflict.
        message = next(iter(error.errors.values()))
        raise ApiProblem(409, message, errors={"days": message}) from None
    return _document(changed)


@_on_client(
    "GET", "/usage", scope="read", query=schemas.UsageQuery, response=schemas.Usage
)
def client_usage(client: str, query: schemas.UsageQuery):
    """A client's traffic by hour or by day, and all time per node"""
    found = _find(client)
    if query.period == "hour":
        series = history.hourly(found.id, hours=query.count)
    else:
        series = history.daily(found.id, days=query.count)
    return schemas.Usage(
        period=query.period,
        points=[
            schemas.UsagePoint(
                start=start.replace(tzinfo=UTC), uplink=up, downlink=down
            )
            for start, up, down in series
        ],
        nodes=[
            schemas.NodeUsage(node=name, uplink=up, downlink=down)
            for name, up, down in history.per_node(found.id)
        ],
    )
