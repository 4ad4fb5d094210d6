"""The gateway to one Xray (or v2ray) daemon's gRPC API.

Plain values in and out: no Flask, no database. One channel per client
object; every call carries a deadline and failures come back as one small
family of exceptions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from typing import Self

import grpc

from xray.protos import proxyman_command_pb2 as handler_pb
from xray.protos import stats_command_pb2 as stats_pb
from xray.protos import typed_message_pb2 as typed_pb
from xray.protos import user_pb2
from xray.protos import vless_account_pb2 as vless_pb

log = logging.getLogger(__name__)

PREFIXES = ("xray", "v2ray.core")

_CHANNEL_OPTIONS = (
    # The daemon is on loopback: never route the API through an HTTP proxy
    # taken from the environment.
    ("grpc.enable_http_proxy", 0),
    # Reconnect soon after a daemon restart instead of backing off for
    # up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
)

_UNAVAILABLE_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
)


class XrayError(Exception):
    """The daemon refused a call; the text is the daemon's own message."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class NotFound(XrayError):
    """No such user in the inbound, or no such counter."""


class AlreadyExists(XrayError):
    """The inbound already holds a user with this email."""


class UnknownInbound(XrayError):
    """The daemon has no inbound with this tag: a configuration error.

    Deliberately not a NotFound, so that "remove a missing user counts as
    success" can never hide a wrong tag.
    """


class Unavailable(XrayError):
    """The daemon did not answer: down, restarting or too slow."""


class Unsupported(XrayError):
    """The daemon lacks this call (e.g. listing users on v2ray 4.34)."""


@dataclass(frozen=True)
class User:
    email: str
    uuid: str
    flow: str = ""
    level: int = 0


@dataclass(frozen=True)
class SysStats:
    uptime: int
    goroutines: int
    alloc: int
    total_alloc: int = 0
    sys: int = 0
    mallocs: int = 0
    frees: int = 0
    live_objects: int = 0
    gc_count: int = 0
    pause_total_ns: int = 0


def map_rpc_error(error: grpc.RpcError) -> XrayError:
    """Turn a gRPC failure into the matching XrayError subclass."""
    code = error.code() if hasattr(error, "code") else None
    text = (error.details() if hasattr(error, "details") else None) or str(error)
    name = code.name if code is not None else None

    if code in _UNAVAILABLE_CODES:
        return Unavailable(text, name)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return Unsupported(text, name)

    # Xray reports user-table errors as UNKNOWN with a recognisable text;
    # look for the inbound first, its text also says "not found".
    lowered = text.lower()
    if "handler not found" in lowered:
        return UnknownInbound(text, name)
    if "already exists" in lowered:
        return AlreadyExists(text, name)
    if code == grpc.StatusCode.NOT_FOUND or "not found" in lowered:
        return NotFound(text, name)
    return XrayError(text, name)


def user_traffic(stats: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Group `user>>>EMAIL>>>traffic>>>uplink|downlink` counters by email."""
    traffic: dict[str, list[int]] = {}
    for name, value in stats.items():
        if not name.startswith("user>>>"):
            continue
        head, sep, direction = name.rpartition(">>>traffic>>>")
        if not sep or direction not in ("uplink", "downlink"):
            continue
        email = head[len("user>>>") :]
        pair = traffic.setdefault(email, [0, 0])
        pair[0 if direction == "uplink" else 1] = value
    return {email: (pair[0], pair[1]) for email, pair in traffic.items()}


class XrayClient:
    """Talks to one daemon at `address` ("host:port").

    `prefix` is "xray" for Xray-core or "v2ray.core" for Debian's v2ray: it
    names both the services and the packed message types. Thread-safe.
    """

    def __init__(
        self, address: str, *, prefix: str = "xray", timeout: float = 5.0
    ) -> None:
        if prefix not in PREFIXES:
            raise ValueError(f"prefix must be one of {PREFIXES}, not {prefix!r}")
        self.address = address
        self.prefix = prefix
        self.timeout = timeout
        self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._bind_methods()

    def _bind_methods(self) -> None:
        handler = f"/{self.prefix}.app.proxyman.command.HandlerService/"
        stats = f"/{self.prefix}.app.stats.command.StatsService/"
        self._alter_inbound = self._method(
            handler + "AlterInbound",
            handler_pb.AlterInboundRequest,
            handler_pb.AlterInboundResponse,
        )
        self._get_inbound_users = self._method(
            handler + "GetInboundUsers",
            handler_pb.GetInboundUserRequest,
            handler_pb.GetInboundUserResponse,
        )
        self._get_inbound_users_count = self._method(
            handler + "GetInboundUsersCount",
            handler_pb.GetInboundUserRequest,
            handler_pb.GetInboundUsersCountResponse,
        )
        self._get_stats = self._method(
            stats + "GetStats", stats_pb.GetStatsRequest, stats_pb.GetStatsResponse
        )
        self._query_stats = self._method(
            stats + "QueryStats",
            stats_pb.QueryStatsRequest,
            stats_pb.QueryStatsResponse,
        )
        self._get_sys_stats = self._method(
            stats + "GetSysStats", stats_pb.SysStatsRequest, stats_pb.SysStatsResponse
        )

    def _method(self, path: str, request: Any, response: Any) -> Any:
        return self._channel.unary_unary(
            path,
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            mapped = map_rpc_error(error)
        # A daemon that doesn't know the service at all speaks the other prefix.
        if "unknown service" in mapped.message:
            hint = f"{mapped.message} (is prefix {self.prefix!r} right?)"
            mapped = Unsupported(hint, mapped.code)
        raise mapped

    def __repr__(self) -> str:
        return f"XrayClient({self.address!r}, prefix={self.prefix!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    # Users

    def add_user(self, tag: str, user: User) -> None:
        """Add a VLESS user to the inbound `tag`; AlreadyExists on a duplicate."""
        self._call(self._alter_inbound, self._add_request(tag, user))
        log.debug("added %s to %s", user.email, tag)

    def add_users(
        self, tag: str, users: Iterable[User], *, concurrency: int = 64
    ) -> dict[str, XrayError]:
        """Add many users with at most `concurrency` calls in flight.

        Returns the failures by email (AlreadyExists included); an empty
        dict means every user was added. Runs on an asyncio channel of its
        own: for thousands of calls the blocking API costs twice the CPU.
        """
        requests = [(user.email, self._add_request(tag, user)) for user in users]
        return asyncio.run(self._add_all(requests, concurrency))

    async def _add_all(
        self, requests: list[tuple[str, Any]], concurrency: int
    ) -> dict[str, XrayError]:
        failures: dict[str, XrayError] = {}
        slots = asyncio.Semaphore(concurrency)
        path = f"/{self.prefix}.app.proxyman.command.HandlerService/AlterInbound"
        async with grpc.aio.insecure_channel(
            self.address, options=_CHANNEL_OPTIONS
        ) as channel:
            alter = channel.unary_unary(
                path,
                request_serializer=handler_pb.AlterInboundRequest.SerializeToString,
                response_deserializer=handler_pb.AlterInboundResponse.FromString,
            )

            async def one(email: str, request: Any) -> None:
                async with slots:
                    try:
                        await alter(request, timeout=self.timeout)
                    except grpc.aio.AioRpcError as error:
                        failures[email] = map_rpc_error(error)

            await asyncio.gather(*(one(email, request) for email, request in requests))
        return failures

    def remove_user(self, tag: str, email: str) -> None:
        """Remove a user by email; NotFound when the inbound lacks it."""
        _require_email(email)
        operation = handler_pb.RemoveUserOperation(email=email)
        request = handler_pb.AlterInboundRequest(
            tag=tag, operation=self._pack(operation)
        )
        self._call(self._alter_inbound, request)
        log.debug("removed %s from %s", email, tag)

    def list_users(self, tag: str) -> list[User]:
        """The inbound's users; Unsupported where the daemon can't list."""
        request = handler_pb.GetInboundUserRequest(tag=tag)
        response = self._call(self._get_inbound_users, request)
        return [_user_from_proto(user) for user in response.users]

    def count_users(self, tag: str) -> int:
        """How many users the inbound holds; Unsupported like list_users."""
        request = handler_pb.GetInboundUserRequest(tag=tag)
        return self._call(self._get_inbound_users_count, request).count

    def _add_request(self, tag: str, user: User) -> handler_pb.AlterInboundRequest:
        _require_email(user.email)
        account = vless_pb.Account(id=user.uuid, flow=user.flow, encryption="none")
        proto_user = user_pb2.User(
            level=user.level, email=user.email, account=self._pack(account)
        )
        operation = handler_pb.AddUserOperation(user=proto_user)
        return handler_pb.AlterInboundRequest(tag=tag, operation=self._pack(operation))

    def _pack(self, message: Any) -> typed_pb.TypedMessage:
        # Our stubs are named xray.*; the daemon wants its own prefix.
        name = message.DESCRIPTOR.full_name.removeprefix("xray.")
        return typed_pb.TypedMessage(
            type=f"{self.prefix}.{name}", value=message.SerializeToString()
        )

    # Stats

    def get_stats(self, name: str, reset: bool = False) -> int:
        """One counter's value; NotFound when it doesn't exist (yet)."""
        request = stats_pb.GetStatsRequest(name=name, reset=reset)
        return self._call(self._get_stats, request).stat.value

    def query_stats(self, pattern: str = "", reset: bool = False) -> dict[str, int]:
        """Every counter whose name contains `pattern`, by name."""
        request = stats_pb.QueryStatsRequest(pattern=pattern, reset=reset)
        response = self._call(self._query_stats, request)
        return {stat.name: stat.value for stat in response.stat}

    def sys_stats(self) -> SysStats:
        """The daemon's runtime figures; uptime is whole seconds."""
        response = self._call(self._get_sys_stats, stats_pb.SysStatsRequest())
        return SysStats(
            uptime=response.Uptime,
            goroutines=response.NumGoroutine,
            alloc=response.Alloc,
            total_alloc=response.TotalAlloc,
            sys=response.Sys,
            mallocs=response.Mallocs,
            frees=response.Frees,
            live_objects=response.LiveObjects,
            gc_count=response.NumGC,
            pause_total_ns=response.PauseTotalNs,
        )


def _require_email(email: str) -> None:
    # Xray accepts an empty email but can never remove that user again.
    if not email:
        raise ValueError("a user's email must not be empty")


def _user_from_proto(user: user_pb2.User) -> User:
    account = vless_pb.Account()
    if user.account.type.endswith(".proxy.vless.Account"):
        account.ParseFromString(user.account.value)
    return User(email=user.email, uuid=account.id, flow=account.flow, level=user.level)
