"""One pod's sidecar proxy: HAProxy's configuration and its runtime API.

The sidecar (docs/mesh.md) is a real proxy, HAProxy (Debian's ``haproxy``),
one process per pod in the pod's network namespace, the way Istio puts Envoy
beside each pod:

* ``outbound`` (127.0.0.1:15001): the listener the app calls. The request's
  ``dmsc-name`` header (``/B`` or ``/B/4``) picks the backend through a map
  file (``name -> backend``); a name with no backend gets 503 ``no route``.
* one backend per name the mesh knows at start (every service and every
  instance), whose servers are the endpoints the control plane pushes:
  ``<pod address>:15006``, the serving pod's inbound listener;
* ``inbound`` (the pod's address, port 15006): calls from other sidecars, to
  the app on 127.0.0.1:9080, so a call crosses two proxies as in Istio.

What a mesh needs of the proxy, and how HAProxy does it (``Policy``):
* active health checks: ``check`` every ``check_inter_ms`` (``GET /healthz``
  through the remote sidecar to its app), ``fall``/``rise``;
* passive outlier ejection: ``observe layer7`` counts the server's 5xx,
  timeouts and failed connections; after ``error_limit`` of them
  ``on-error mark-down`` takes it out until a check passes again;
* retries elsewhere: ``retry-on`` (connection failure, empty response,
  response timeout, 502/503/504) up to ``retries`` times with ``option
  redispatch 1`` (every retry goes to another server): the retry budget;
* a call slower than ``server_timeout_ms`` counts as an error and is retried:
  a slowed instance is ejected the way Envoy's outlier detection would
  (HAProxy has no latency-based ejection of its own);
* endpoint updates without reload: :class:`Runtime` speaks the runtime API
  on the stats socket (``add server``/``del server``/``set server``).

A name that appears only later (a new service) needs a backend, which
HAProxy 2.6 cannot add at run time: the sidecar is started with every name
the registry may grant (docs/mesh.md says so as a limit of the baseline).
"""
from __future__ import annotations

import csv
import io
import re
import socket
import time
from dataclasses import dataclass

from traffic.wire import names

OUTBOUND_PORT = 15001
INBOUND_PORT = 15006
APP_PORT = 9080
NAME_HEADER = "dmsc-name"          # traffic/http_pod.py's


@dataclass(frozen=True)
class Policy:
    connect_timeout_ms: int = 200
    server_timeout_ms: int = 1000
    client_timeout_ms: int = 30000
    retries: int = 2
    check_inter_ms: int = 500
    fall: int = 2
    rise: int = 1
    error_limit: int = 2

    def server_options(self) -> str:
        """The keywords every endpoint server gets (``add server`` does not
        take them from ``default-server``: both use this)."""
        return (f"check inter {self.check_inter_ms}ms fall {self.fall} rise {self.rise} "
                f"observe layer7 error-limit {self.error_limit} on-error mark-down")


def backend_name(name: str) -> str:
    """``/B/4`` -> ``n_B_4``: HAProxy's names take no slash."""
    parts = names.components(names.normalize(name))
    return "n_" + "_".join(re.sub(r"[^A-Za-z0-9.-]", lambda m: f"%{ord(m.group()):02x}", p)
                           for p in parts)


def server_name(instance: str) -> str:
    """An endpoint's server name in every backend it is in: ``/B/4`` -> ``B_4``."""
    return backend_name(instance)[2:]


def clusters_of(instance: str) -> list[str]:
    """The names an instance serves: itself and every prefix above it
    (``/B/4`` serves ``/B/4`` and ``/B``), as a DMSC pod announces them."""
    parts = names.components(names.normalize(instance))
    return ["/" + "/".join(parts[:d]) for d in range(1, len(parts) + 1)]


def map_text(known: list[str]) -> str:
    return "".join(f"{names.normalize(n)} {backend_name(n)}\n" for n in sorted(known))


def render(known: list[str], *, address: str, stats_socket: str, map_file: str,
           policy: Policy = Policy(), app_port: int = APP_PORT,
           outbound_port: int = OUTBOUND_PORT, inbound_port: int = INBOUND_PORT,
           access_log: bool = False) -> str:
    """The sidecar's haproxy.cfg: the listeners, one (empty) backend per known
    name, endpoints to come through the runtime API. ``access_log``: one line
    per request on stdout (off by default, as Istio's access log is)."""
    p = policy
    lines = [
        "global",
        f"    stats socket {stats_socket} mode 600 level admin",
        "    maxconn 2000",
        "    nbthread 1",
        *(["    log stdout format raw local0 info"] if access_log else []),
        "defaults",
        "    mode http",
        *(["    log global", "    option httplog"] if access_log else []),
        "    option http-keep-alive",
        f"    timeout connect {p.connect_timeout_ms}ms",
        f"    timeout client {p.client_timeout_ms}ms",
        f"    timeout server {p.server_timeout_ms}ms",
        f"    timeout check {p.server_timeout_ms}ms",
        f"    timeout http-keep-alive {p.client_timeout_ms}ms",
        f"    retries {p.retries}",
        "    retry-on conn-failure empty-response response-timeout 502 503 504",
        "    option redispatch 1",
        "    option http-buffer-request",      # the whole request kept: L7 retries need it
        "frontend outbound",
        f"    bind 127.0.0.1:{outbound_port}",
        f"    use_backend %[req.hdr({NAME_HEADER}),map({map_file},no_route)]",
        "backend no_route",
        '    http-request return status 503 content-type text/plain string "no route"',
        "frontend inbound",
        f"    bind {address}:{inbound_port}",
        "    default_backend local_app",
        "backend local_app",
        "    retries 0",
        f"    server app 127.0.0.1:{app_port}",
    ]
    for n in sorted(known):
        lines += [f"backend {backend_name(n)}",
                  "    balance roundrobin",
                  "    option httpchk GET /healthz"]
    return "\n".join(lines) + "\n"


class RuntimeError_(RuntimeError):
    """HAProxy refused a runtime command; ``reply`` says why."""

    def __init__(self, command: str, reply: str):
        self.command, self.reply = command, reply
        super().__init__(f"haproxy: {command!r}: {reply.strip()}")


class Runtime:
    """HAProxy's runtime API on its stats socket: one command per connection."""

    def __init__(self, path: str, timeout: float = 2.0):
        self.path, self.timeout = path, timeout
        self.commands = 0

    def command(self, cmd: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            s.connect(self.path)
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        self.commands += 1
        return b"".join(chunks).decode("utf-8", "replace")

    def wait_ready(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.command("show info")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stat(self) -> list[dict]:
        """``show stat`` as dicts (pxname, svname, status, addr, ...)."""
        text = self.command("show stat").lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def servers(self, backend: str | None = None) -> dict[str, dict[str, dict]]:
        """{backend: {server: its stat row}}, the listeners and backends' own rows left out."""
        out: dict[str, dict[str, dict]] = {}
        for row in self.stat():
            if row["svname"] in ("FRONTEND", "BACKEND") or row["pxname"] in (
                    "outbound", "inbound", "local_app", "no_route"):
                continue
            if backend is None or row["pxname"] == backend:
                out.setdefault(row["pxname"], {})[row["svname"]] = row
        return out

    def _ok(self, cmd: str, *fine: str) -> str:
        reply = self.command(cmd)
        text = reply.strip()
        if text and not any(f in text for f in fine):
            raise RuntimeError_(cmd, reply)
        return reply

    def add_server(self, backend: str, server: str, address: str, port: int,
                   policy: Policy = Policy()) -> None:
        """A new endpoint, ready and checked, without reload."""
        self._ok(f"add server {backend}/{server} {address}:{port} {policy.server_options()}",
                 "New server registered")
        self._ok(f"enable health {backend}/{server}")
        self._ok(f"set server {backend}/{server} state ready")

    def set_address(self, backend: str, server: str, address: str, port: int) -> None:
        self._ok(f"set server {backend}/{server} addr {address} port {port}",
                 "changed", "no need to change")

    def del_server(self, backend: str, server: str) -> None:
        """Drain nothing: take it out now (maintenance, its sessions shut) and delete it."""
        self._ok(f"set server {backend}/{server} state maint")
        self._ok(f"shutdown sessions server {backend}/{server}")
        deadline = time.monotonic() + 2.0
        while True:
            reply = self.command(f"del server {backend}/{server}")
            if "Server deleted" in reply:
                return
            if time.monotonic() > deadline:
                raise RuntimeError_(f"del server {backend}/{server}", reply)
            time.sleep(0.01)          # connections still closing
