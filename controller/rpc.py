"""What every gRPC service of the testbed shares: where its server may listen,
and how; the plumbing of its clients (:class:`GrpcClient`).

Who may administer: every service's methods (the SPA's Authorize, AddKey, Revoke;
each agent's AcceptPrefix and, on its policy channel, SetPolicies; the SCSC; the
central controller) are for
root only. A running network's services listen on Unix sockets in a directory of
their own, mode 0700 and owned by root (``private_socket_dir``): the kernel refuses
any other user's connect, before gRPC sees a byte. docs/decisions.md says why Unix
sockets and not mutual TLS. ``127.0.0.1:PORT`` is still accepted when a service is
started by hand (any local user can reach it: the service says so in its log).

``EXCLUSIVE_PORT``: grpcio binds servers with SO_REUSEPORT by default, so a
second server on a port already taken binds too, and the kernel then shares the
port's connections between the two: calls meant for one agent reach another.
Every server of ours binds without it, so such a bind fails at once instead.
"""
from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import grpc

EXCLUSIVE_PORT = [("grpc.so_reuseport", 0)]
UNIX = "unix:"


def bind(server, addr: str) -> bool:
    """``server.add_insecure_port(addr)``: False when the address cannot be
    bound (grpcio answers 0 or raises, depending on the failure)."""
    try:
        return server.add_insecure_port(addr) != 0
    except RuntimeError:
        return False


def private_socket_dir(prefix: str = "dmsc-") -> Path:
    """A new directory for a network's sockets: mode 0700, owned by this user
    (short, under /tmp: a socket path has at most 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def unix_addr(sock_dir: Path, name: str) -> str:
    return f"{UNIX}{Path(sock_dir) / name}.sock"


def check_listen_addr(addr: str) -> str | None:
    """Why a service may not listen on ``addr`` (None: it may). A Unix socket
    must be in a directory that only its owner (this user) can enter; TCP only
    on 127.0.0.1. Returns a warning text for TCP, which any local user reaches."""
    if addr.startswith(UNIX):
        path = Path(addr[len(UNIX):])
        if not path.is_absolute():
            raise ValueError(f"{addr}: a Unix socket address needs an absolute path")
        try:
            st = path.parent.stat()
        except OSError as exc:
            raise ValueError(f"{addr}: its directory: {exc.strerror}") from None
        if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"{addr}: its directory {path.parent} must be private (mode "
                             f"0700, owned by uid {os.geteuid()}), not "
                             f"{stat.filemode(st.st_mode)} of uid {st.st_uid}")
        return None
    if addr.startswith("127.0.0.1:"):
        return (f"listening on {addr}: any local user can call this service's methods "
                f"(a network started by the testbed uses a private Unix socket)")
    raise ValueError(f"{addr}: listen on unix:/private/dir/name.sock or 127.0.0.1:PORT only")


def addr_open(addr: str, timeout: float = 0.2) -> bool:
    """Is something accepting connections at ``addr`` (unix:PATH or 127.0.0.1:PORT)?"""
    if addr.startswith(UNIX):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            return s.connect_ex(addr[len(UNIX):]) == 0
    host, _, port = addr.rpartition(":")
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex((host, int(port))) == 0


class RpcError(RuntimeError):
    """A call that failed (the service did not answer, or refused)."""


class GrpcClient:
    """A service's client: one channel, one stub, every failure raised as
    ``error`` naming ``what`` answered at ``addr``. The agents' admin and policy
    clients and the central controller's client are made of it."""
    stub_class = None
    error = RpcError
    what = "service"

    def __init__(self, addr: str, timeout: float = 3.0):
        self.addr = addr
        self.timeout = timeout
        self.channel = grpc.insecure_channel(addr)
        self.stub = self.stub_class(self.channel)

    def _call(self, fn, req):
        try:
            return fn(req, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise self.error(f"{self.what} at {self.addr}: {exc.code().name} "
                             f"{exc.details()}") from None

    def _ok(self, rep) -> None:
        if not rep.ok:
            raise self.error(rep.error)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
