"""A stand-in for Xray's gRPC API, for tests and for trying the panel out.

It answers HandlerService and StatsService under both the `xray.` and the
`v2ray.core.` service names, as Xray does, but resolves packed message types
only with its own prefix. Its user table and counters follow the daemon:
emails match ignoring case, a second user with the same UUID takes the UUID
over, counters appear at a user's first traffic and outlive the user.

    python -m xray.simulator --port 10085 [--tag vless-in] [--prefix xray]
        [--demo-traffic [--demo-interval SECONDS]] [--no-list] [--host HOST]
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import re
import resource
import signal
import sys
import threading
import time
import uuid as uuidlib
from concurrent import futures
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message_factory import GetMessageClass

from xray.client import PREFIXES
from xray.client import User
from xray.protos import proxyman_command_pb2 as handler_pb
from xray.protos import stats_command_pb2 as stats_pb
from xray.protos import typed_message_pb2 as typed_pb
from xray.protos import user_pb2
from xray.protos import vless_account_pb2 as vless_pb

log = logging.getLogger(__name__)

DEMO_INTERVAL = 3.0

# Calls that Xray has since v24.11 and v2ray 4.34 lacks.
_LISTING_CALLS = {"GetInboundUsers", "GetInboundUsersCount"}


class Refused(Exception):
    """The simulated daemon refuses a request with a gRPC code and text."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Inbound:
    tag: str
    # Lowercased email -> user: the daemon matches emails ignoring case.
    by_email: dict[str, User] = field(default_factory=dict)
    # UUID -> user who authenticates with it: the last one added wins.
    by_uuid: dict[str, User] = field(default_factory=dict)


class Simulator:
    """A simulated daemon on host:port (port 0 picks a free one at start)."""

    def __init__(
        self,
        *,
        tag: str = "vless-in",
        prefix: str = "xray",
        host: str = "127.0.0.1",
        port: int = 0,
        can_list: bool = True,
        extra_tags: tuple[str, ...] = (),
    ) -> None:
        if prefix not in PREFIXES:
            raise ValueError(f"prefix must be one of {PREFIXES}, not {prefix!r}")
        self.tag = tag
        self.tags = (tag, *extra_tags)
        self.prefix = prefix
        self.host = host
        self.port = port
        self.can_list = can_list
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self._stall = 0.0
        self._reset_state()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _reset_state(self) -> None:
        with self._lock:
            self._inbounds = {tag: _Inbound(tag) for tag in self.tags}
            self._counters: dict[str, int] = {}
            self._started_at = time.monotonic()
            self._uptime_offset = 0.0

    # Lifecycle

    def start(self) -> Simulator:
        """Boot like a daemon: empty user table, no counters, uptime 0."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._reset_state()
        self._stopped.clear()
        self._executor = futures.ThreadPoolExecutor(
            max_workers=16, thread_name_prefix="simulator"
        )
        # No SO_REUSEPORT: a second simulator on a taken port must fail.
        server = grpc.server(self._executor, options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers(self._handlers())
        self.port = _bind(server, self.host, self.port)
        server.start()
        self._server = server
        log.info("simulator listening on %s (prefix %s)", self.address, self.prefix)
        return self

    def stop(self) -> None:
        """Go down like a killed daemon: the port refuses connections."""
        if self._server is None:
            return
        self._stopped.set()
        self._server.stop(grace=0).wait()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._server = None
        self._executor = None

    def restart(self) -> None:
        """Stop and start on the same port, forgetting users and counters."""
        self.stop()
        self.start()

    # Test controls

    def stall(self, seconds: float) -> None:
        """Make every later call wait this long first (0 to stop stalling)."""
        self._stall = seconds

    def advance_uptime(self, seconds: float) -> None:
        """Move the reported uptime forward without sleeping."""
        with self._lock:
            self._uptime_offset += seconds

    def uptime(self) -> int:
        with self._lock:
            return self._uptime_locked()

    def _uptime_locked(self) -> int:
        return int(time.monotonic() - self._started_at + self._uptime_offset)

    def users(self, tag: str | None = None) -> dict[str, User]:
        """A snapshot of an inbound's users, by email as sent."""
        with self._lock:
            inbound = self._inbounds[tag or self.tag]
            return {user.email: user for user in inbound.by_email.values()}

    def counters(self) -> dict[str, int]:
        """A snapshot of every counter."""
        with self._lock:
            return dict(self._counters)

    def add_user(self, user: User, tag: str | None = None) -> None:
        """Add a user without gRPC (fast setup); Refused like AlterInbound."""
        with self._lock:
            self._add_user(self._inbound(tag or self.tag), user)

    def push_traffic(
        self, email: str, uplink: int = 0, downlink: int = 0, *, tag: str | None = None
    ) -> str:
        """Count traffic of a connection made with this user's UUID.

        Returns the email the bytes were counted under: the UUID's current
        owner, which differs when a later user took the UUID over. Raises
        LookupError when no present user could have connected (the daemon
        would have refused the connection, so nothing counts).
        """
        with self._lock:
            return self._count(tag or self.tag, email, uplink, downlink)

    def _count(self, tag: str, email: str, uplink: int, downlink: int) -> str:
        inbound = self._inbounds[tag]
        user = inbound.by_email.get(email.lower())
        owner = inbound.by_uuid.get(user.uuid) if user else None
        if owner is None:
            raise LookupError(f"no user {email!r} can connect to {tag}")

        for direction, amount in (("uplink", uplink), ("downlink", downlink)):
            self._bump(f"inbound>>>{tag}>>>traffic>>>{direction}", amount)
            if owner.email:
                self._bump(f"user>>>{owner.email}>>>traffic>>>{direction}", amount)
        return owner.email

    def _bump(self, name: str, amount: int) -> None:
        self._counters[name] = self._counters.get(name, 0) + amount

    # The user table

    def _inbound(self, tag: str) -> _Inbound:
        inbound = self._inbounds.get(tag)
        if inbound is None:
            raise Refused(
                grpc.StatusCode.UNKNOWN,
                f"app/proxyman/command: failed to get handler: {tag} > "
                f"app/proxyman/inbound: handler not found: {tag}",
            )
        return inbound

    def _add_user(self, inbound: _Inbound, user: User) -> None:
        key = user.email.lower()
        if user.email and key in inbound.by_email:
            raise Refused(
                grpc.StatusCode.UNKNOWN,
                f"proxy/vless: User {user.email} already exists.",
            )
        # An empty email is accepted but never indexed: it can't be removed.
        if user.email:
            inbound.by_email[key] = user
        inbound.by_uuid[user.uuid] = user

    def _remove_user(self, inbound: _Inbound, email: str) -> None:
        if not email:
            raise Refused(
                grpc.StatusCode.UNKNOWN, "proxy/vless: Email must not be empty."
            )
        user = inbound.by_email.pop(email.lower(), None)
        if user is None:
            raise Refused(
                grpc.StatusCode.UNKNOWN, f"proxy/vless: User {email} not found."
            )
        # Like the daemon, drop the UUID even if a later user had taken it.
        inbound.by_uuid.pop(user.uuid, None)

    # gRPC

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        handlers = []
        for module in (handler_pb, stats_pb):
            (service,) = module.DESCRIPTOR.services_by_name.values()
            methods = {
                call.name: self._method(call)
                for call in service.methods
                if self.can_list or call.name not in _LISTING_CALLS
            }
            # Like Xray: the old service names too, with the same behaviour.
            for prefix in PREFIXES:
                name = prefix + service.full_name.removeprefix("xray")
                handlers.append(grpc.method_handlers_generic_handler(name, methods))
        return handlers

    def _method(self, call: MethodDescriptor) -> grpc.RpcMethodHandler:
        # AlterInbound is answered by self._alter_inbound, and so on.
        snake = re.sub("(?<!^)([A-Z])", r"_\1", call.name).lower()
        behaviour = getattr(self, f"_{snake}")

        def answer(message: Any, context: grpc.ServicerContext) -> Any:
            if self._stall:
                self._stopped.wait(self._stall)
            try:
                with self._lock:
                    return behaviour(message)
            except Refused as refusal:
                context.abort(refusal.code, refusal.message)

        return grpc.unary_unary_rpc_method_handler(
            answer,
            request_deserializer=GetMessageClass(call.input_type).FromString,
            response_serializer=GetMessageClass(call.output_type).SerializeToString,
        )

    def _alter_inbound(self, request: Any) -> handler_pb.AlterInboundResponse:
        inbound = self._inbound(request.tag)
        operation = request.operation
        if operation.type == f"{self.prefix}.app.proxyman.command.AddUserOperation":
            add = handler_pb.AddUserOperation.FromString(operation.value)
            self._add_user(inbound, self._user_from_proto(add.user))
        elif operation.type == (
            f"{self.prefix}.app.proxyman.command.RemoveUserOperation"
        ):
            remove = handler_pb.RemoveUserOperation.FromString(operation.value)
            self._remove_user(inbound, remove.email)
        else:
            raise Refused(
                grpc.StatusCode.UNKNOWN,
                "app/proxyman/command: unknown operation > "
                f"common/serial: unknown type: {operation.type}",
            )
        return handler_pb.AlterInboundResponse()

    def _user_from_proto(self, proto_user: user_pb2.User) -> User:
        account_type = proto_user.account.type
        if account_type != f"{self.prefix}.proxy.vless.Account":
            raise Refused(
                grpc.StatusCode.UNKNOWN,
                "app/proxyman/command: failed to parse user > "
                f"common/serial: unknown type: {account_type}",
            )
        account = vless_pb.Account.FromString(proto_user.account.value)
        try:
            uuid = str(uuidlib.UUID(account.id))
        except ValueError:
            raise Refused(
                grpc.StatusCode.UNKNOWN,
                "app/proxyman/command: failed to parse user > "
                f"proxy/vless: invalid UUID {account.id!r}",
            ) from None
        return User(
            email=proto_user.email, uuid=uuid, flow=account.flow, level=proto_user.level
        )

    def _user_to_proto(self, user: User) -> user_pb2.User:
        account = vless_pb.Account(id=user.uuid, flow=user.flow, encryption="none")
        packed = typed_pb.TypedMessage(
            type=f"{self.prefix}.proxy.vless.Account",
            value=account.SerializeToString(),
        )
        return user_pb2.User(level=user.level, email=user.email, account=packed)

    def _get_inbound_users(self, request: Any) -> handler_pb.GetInboundUserResponse:
        inbound = self._inbound(request.tag)
        if request.email:
            found = inbound.by_email.get(request.email.lower())
            users = [found] if found else []
        else:
            users = list(inbound.by_email.values())
        return handler_pb.GetInboundUserResponse(
            users=[self._user_to_proto(user) for user in users]
        )

    def _get_inbound_users_count(
        self, request: Any
    ) -> handler_pb.GetInboundUsersCountResponse:
        inbound = self._inbound(request.tag)
        return handler_pb.GetInboundUsersCountResponse(count=len(inbound.by_email))

    def _get_stats(self, request: Any) -> stats_pb.GetStatsResponse:
        if request.name not in self._counters:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"{request.name} not found.")
        value = self._counters[request.name]
        if request.reset:
            self._counters[request.name] = 0
        return stats_pb.GetStatsResponse(
            stat=stats_pb.Stat(name=request.name, value=value)
        )

    def _query_stats(self, request: Any) -> stats_pb.QueryStatsResponse:
        matches = _matcher(request)
        stats = []
        for name, value in self._counters.items():
            if matches(name):
                stats.append(stats_pb.Stat(name=name, value=value))
                if request.reset:
                    self._counters[name] = 0
        return stats_pb.QueryStatsResponse(stat=stats)

    def _get_sys_stats(self, request: Any) -> stats_pb.SysStatsResponse:
        # The figures describe this Python process, in the daemon's fields.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        blocks = sys.getallocatedblocks()
        return stats_pb.SysStatsResponse(
            NumGoroutine=threading.active_count(),
            NumGC=sum(generation["collections"] for generation in gc.get_stats()),
            Alloc=rss,
            TotalAlloc=rss,
            Sys=rss,
            Mallocs=blocks,
            LiveObjects=blocks,
            Uptime=self._uptime_locked(),
        )


def _matcher(request: Any) -> Any:
    """A name filter like Xray's: any of the patterns, substring or regexp."""
    patterns = list(request.patterns)
    if request.pattern:
        patterns.append(request.pattern)
    if not patterns:
        return lambda name: True
    if request.regexp:
        try:
            compiled = [re.compile(pattern) for pattern in patterns]
        except re.error as error:
            raise Refused(
                grpc.StatusCode.UNKNOWN, f"app/stats/command: bad pattern: {error}"
            ) from None
        return lambda name: any(regex.search(name) for regex in compiled)
    return lambda name: any(pattern in name for pattern in patterns)


def _bind(server: grpc.Server, host: str, port: int) -> int:
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as error:
        raise OSError(f"cannot listen on {host}:{port}: {error}") from None
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    return bound


# Demo traffic and the command line


def _demo_traffic(
    simulator: Simulator, stopped: threading.Event, interval: float
) -> None:
    """Every few seconds, some small random traffic for each present user."""
    while not stopped.wait(interval):
        for email in simulator.users():
            try:
                simulator.push_traffic(
                    email,
                    uplink=random.randint(0, 200_000),
                    downlink=random.randint(0, 5_000_000),
                )
            except LookupError:
                continue


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m xray.simulator",
        description="A stand-in for Xray's gRPC API (HandlerService, StatsService).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=10085)
    parser.add_argument("--tag", default="vless-in", help="the VLESS inbound tag")
    parser.add_argument("--prefix", default="xray", choices=PREFIXES)
    parser.add_argument(
        "--demo-traffic",
        action="store_true",
        help="make random traffic for present users every few seconds",
    )
    parser.add_argument(
        "--demo-interval",
        type=float,
        default=DEMO_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between demo traffic rounds (default {DEMO_INTERVAL:g})",
    )
    parser.add_argument(
        "--no-list",
        action="store_true",
        help="answer listing users with UNIMPLEMENTED, like v2ray 4.34",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    simulator = Simulator(
        tag=options.tag,
        prefix=options.prefix,
        host=options.host,
        port=options.port,
        can_list=not options.no_list,
    ).start()

    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    if options.demo_traffic:
        threading.Thread(
            target=_demo_traffic,
            args=(simulator, stopped, options.demo_interval),
            daemon=True,
        ).start()

    stopped.wait()
    simulator.stop()
    log.info("simulator stopped")


if __name__ == "__main__":
    main()
