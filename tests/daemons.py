"""Real servers on loopback for tests: v2ray, a v2ray client, a content server.

Register the fixtures with `pytest_plugins = ["tests.daemons"]`. Every
process a fixture starts is ended, by PID, in its teardown.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from xray.simulator import Simulator

V2RAY_BIN = os.environ.get("V2RAY_BIN", "/usr/bin/v2ray")
START_TIMEOUT = 10.0

T = TypeVar("T")


class FetchFailed(Exception):
    """A request through the SOCKS proxy got no (good) answer."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT) -> bool:
    """True once 127.0.0.1:port accepts a connection, False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def eventually(
    call: Callable[[], T],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    timeout: float = 5.0,
    interval: float = 0.05,
) -> T:
    """Call until it stops raising `retry_on`; the last error after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except retry_on:
            if time.monotonic() >= deadline:
                raise
            time.sleep(interval)


def when_online(call: Callable[[], T], timeout: float = 10.0) -> T:
    """Call until the result says `.online`, as a job would after an outage:
    a gRPC channel reconnects a moment after its daemon is back."""
    deadline = time.monotonic() + timeout
    while True:
        result = call()
        if getattr(result, "online", False) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


# v2ray processes


class _V2RayProcess(ABC):
    """One v2ray process run from a JSON config in its own directory."""

    name = "v2ray"

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def config(self) -> dict:
        """The JSON config this process runs with."""

    @abstractmethod
    def ports(self) -> tuple[int, ...]:
        """The ports it listens on, to wait for."""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the process's logs, for failure messages."""
        text = []
        for log_name in ("stdout.log", "error.log"):
            path = self.workdir / log_name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                text.append(f"--- {log_name}\n" + "\n".join(tail))
        return "\n".join(text)

    def start(self) -> _V2RayProcess:
        """Start the process and wait until all its ports accept connections."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        config_path = self.workdir / "config.json"
        config_path.write_text(json.dumps(self.config(), indent=2))

        with open(self.workdir / "stdout.log", "ab") as output:
            self.process = subprocess.Popen(
                [V2RAY_BIN, "-config", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )

        for port in self.ports():
            if not self.running or not wait_for_port(port):
                self.kill()
                raise RuntimeError(
                    f"{self.name} did not listen on {port}\n{self.log_tail()}"
                )
        return self

    def kill(self) -> None:
        """SIGKILL the process (by its PID) and reap it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """End the process politely (SIGTERM), or kill it after 5 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.kill()

    def restart(self) -> None:
        """Stop and start again on the same ports, forgetting all state."""
        self.stop()
        self.start()


def _log_section(workdir: Path) -> dict:
    return {
        "loglevel": "warning",
        "access": str(workdir / "access.log"),
        "error": str(workdir / "error.log"),
    }


def _policy_levels() -> dict:
    # v2ray waits 1 s per connection for the other direction to finish by
    # default; tests open many short connections, so close them at once.
    return {
        "0": {
            "statsUserUplink": True,
            "statsUserDownlink": True,
            "uplinkOnly": 0,
            "downlinkOnly": 0,
        }
    }


class V2RayServer(_V2RayProcess):
    """Debian's v2ray as the node: a gRPC API and an empty VLESS inbound.

    The API speaks the `v2ray.core` prefix. Ports are picked once and kept
    across restarts, so one client can follow the daemon.
    """

    name = "v2ray server"
    inbound_tag = "vless-in"
    prefix = "v2ray.core"

    def __init__(
        self, workdir: Path, *, api_port: int = 0, vless_port: int = 0
    ) -> None:
        super().__init__(workdir)
        self.api_port = api_port or free_port()
        self.vless_port = vless_port or free_port()

    @property
    def api_address(self) -> str:
        return f"127.0.0.1:{self.api_port}"

    def ports(self) -> tuple[int, ...]:
        return (self.api_port, self.vless_port)

    def config(self) -> dict:
        return {
            "log": _log_section(self.workdir),
            "api": {"tag": "api", "services": ["HandlerService", "StatsService"]},
            "stats": {},
            "policy": {
                "levels": _policy_levels(),
                "system": {"statsInboundUplink": True, "statsInboundDownlink": True},
            },
            "inbounds": [self._api_inbound(), self._vless_inbound()],
            "outbounds": [{"tag": "direct", "protocol": "freedom"}],
            "routing": {
                "rules": [
                    {"type": "field", "inboundTag": ["api"], "outboundTag": "api"}
                ]
            },
        }

    def _api_inbound(self) -> dict:
        return {
            "tag": "api",
            "listen": "127.0.0.1",
            "port": self.api_port,
            "protocol": "dokodemo-door",
            "settings": {"address": "127.0.0.1"},
        }

    def _vless_inbound(self) -> dict:
        return {
            "tag": self.inbound_tag,
            "listen": "127.0.0.1",
            "port": self.vless_port,
            "protocol": "vless",
            "settings": {"clients": [], "decryption": "none"},
            "streamSettings": {"network": "tcp", "security": "none"},
        }


class V2RayProxyClient(_V2RayProcess):
    """A second v2ray acting as a user's app: SOCKS5 in, VLESS out."""

    name = "v2ray proxy client"

    def __init__(
        self, workdir: Path, *, server_port: int, uuid: str, socks_port: int = 0
    ) -> None:
        super().__init__(workdir)
        self.server_port = server_port
        self.uuid = uuid
        self.socks_port = socks_port or free_port()

    def ports(self) -> tuple[int, ...]:
        return (self.socks_port,)

    def fetch(self, url: str, timeout: float = 10.0) -> bytes:
        """GET `url` through this client and the server; FetchFailed if not."""
        return fetch_via_socks(self.socks_port, url, timeout)

    def config(self) -> dict:
        user = {"id": self.uuid, "encryption": "none", "level": 0}
        server = {"address": "127.0.0.1", "port": self.server_port, "users": [user]}
        return {
            "log": _log_section(self.workdir),
            "policy": {"levels": _policy_levels()},
            "inbounds": [
                {
                    "tag": "socks-in",
                    "listen": "127.0.0.1",
                    "port": self.socks_port,
                    "protocol": "socks",
                    "settings": {"auth": "noauth", "udp": False},
                }
            ],
            "outbounds": [
                {
                    "tag": "to-server",
                    "protocol": "vless",
                    "settings": {"vnext": [server]},
                    "streamSettings": {"network": "tcp", "security": "none"},
                }
            ],
        }


# SOCKS5 + HTTP/1.0, by hand


def fetch_via_socks(socks_port: int, url: str, timeout: float = 10.0) -> bytes:
    """GET an http:// URL through the SOCKS5 proxy on 127.0.0.1:socks_port.

    Returns the body of a 200 answer; raises FetchFailed on anything else,
    including an empty reply (what v2ray gives when the server refuses).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs can be fetched, not {url!r}")
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    try:
        with socket.create_connection(("127.0.0.1", socks_port), timeout) as conn:
            _socks_connect(conn, parts.hostname, port)
            request = f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n"
            conn.sendall(request.encode("ascii"))
            reply = _read_all(conn)
    except OSError as error:
        raise FetchFailed(f"{url}: {error}") from error
    return _http_body(url, reply)


def _socks_connect(conn: socket.socket, host: str, port: int) -> None:
    conn.sendall(b"\x05\x01\x00")
    if _read_exact(conn, 2) != b"\x05\x00":
        raise FetchFailed("SOCKS proxy refused the no-auth method")

    conn.sendall(b"\x05\x01\x00" + _socks_address(host) + port.to_bytes(2, "big"))
    head = _read_exact(conn, 4)
    if head[1] != 0:
        raise FetchFailed(f"SOCKS CONNECT failed with code {head[1]}")

    # Skip the bound address the proxy reports.
    address_sizes = {1: 4, 4: 16}
    size = address_sizes.get(head[3]) or _read_exact(conn, 1)[0]
    _read_exact(conn, size + 2)


def _socks_address(host: str) -> bytes:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        encoded = host.encode("idna")
        return b"\x03" + bytes([len(encoded)]) + encoded
    kind = b"\x01" if address.version == 4 else b"\x04"
    return kind + address.packed


def _read_exact(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            raise FetchFailed("the proxy closed the connection")
        chunks += chunk
    return bytes(chunks)


def _read_all(conn: socket.socket) -> bytes:
    chunks = bytearray()
    while chunk := conn.recv(65536):
        chunks += chunk
    return bytes(chunks)


def _http_body(url: str, reply: bytes) -> bytes:
    if not reply:
        raise FetchFailed(f"{url}: empty reply")
    head, sep, body = reply.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status) < 2 or status[1] != b"200":
        raise FetchFailed(f"{url}: bad reply {head[:80]!r}")
    return body


# Content to fetch


def content_bytes(size: int) -> bytes:
    """The deterministic body served at /bytes/<size>."""
    pattern = bytes(range(256))
    return (pattern * (size // 256 + 1))[:size]


class _ContentHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        prefix, _, size = self.path.rpartition("/")
        if prefix != "/bytes" or not size.isdigit():
            self.send_error(404)
            return
        body = content_bytes(int(size))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _ContentHTTPServer(http.server.ThreadingHTTPServer):
    # http.server's backlog of 5 drops sessions under concurrent tests.
    request_queue_size = 256
    daemon_threads = True


class ContentServer:
    """An HTTP server on 127.0.0.1 that serves N known bytes at /bytes/N."""

    def __init__(self) -> None:
        self._server = _ContentHTTPServer(("127.0.0.1", 0), _ContentHandler)
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def url(self, size: int) -> str:
        return f"http://127.0.0.1:{self.port}/bytes/{size}"

    def start(self) -> ContentServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="content-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()


# Fixtures


def require(present: bool, message: str) -> None:
    """Skip on a developer's machine that lacks a part; in CI it must be there."""
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_v2ray() -> None:
    require(
        shutil.which(V2RAY_BIN) is not None,
        f"{V2RAY_BIN} is not installed (make test installs it)",
    )


@pytest.fixture
def v2ray_server(tmp_path: Path) -> Iterator[V2RayServer]:
    """A running v2ray node with an empty `vless-in` inbound."""
    require_v2ray()
    server = V2RayServer(tmp_path / "v2ray-server")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def v2ray_proxy(
    tmp_path: Path, v2ray_server: V2RayServer
) -> Iterator[Callable[[str], V2RayProxyClient]]:
    """Start a proxy client for a UUID: `v2ray_proxy(uuid).fetch(url)`."""
    started: list[V2RayProxyClient] = []

    def start(uuid: str) -> V2RayProxyClient:
        workdir = tmp_path / f"v2ray-client-{len(started)}"
        client = V2RayProxyClient(
            workdir, server_port=v2ray_server.vless_port, uuid=uuid
        )
        started.append(client)
        return client.start()

    yield start
    for client in started:
        client.kill()


@pytest.fixture
def content_server() -> Iterator[ContentServer]:
    server = ContentServer().start()
    yield server
    server.stop()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A running simulator with the `vless-in` inbound and the xray prefix."""
    sim = Simulator().start()
    yield sim
    sim.stop()
