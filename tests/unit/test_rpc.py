"""Ports of the testbed's own gRPC servers: never two servers on one port."""
from concurrent import futures

import grpc

from controller.rpc import EXCLUSIVE_PORT, bind
from topologies.emu import child_processes as process
from topologies.emu.child_processes import free_port


def test_a_second_server_on_a_taken_port_fails_instead_of_sharing_it():
    first = grpc.server(futures.ThreadPoolExecutor(1), options=EXCLUSIVE_PORT)
    second = grpc.server(futures.ThreadPoolExecutor(1), options=EXCLUSIVE_PORT)
    try:
        port = free_port()
        assert bind(first, f"127.0.0.1:{port}")
        first.start()
        assert not bind(second, f"127.0.0.1:{port}")
    finally:
        first.stop(None)
        second.stop(None)


def test_free_port_never_hands_out_a_port_twice(monkeypatch):
    # the kernel may give the same free port to two binds a moment apart
    kernel = iter([47001, 47001, 47002])

    class Sock:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def bind(self, addr):
            self.port = next(kernel)

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(process.socket, "socket", Sock)
    assert [free_port(), free_port()] == [47001, 47002]


def test_services_listen_only_where_only_their_owner_can_connect(tmp_path):
    import os
    import pytest
    from controller.rpc import addr_open, check_listen_addr, private_socket_dir, unix_addr
    d = private_socket_dir()
    try:
        assert (os.stat(d).st_mode & 0o777) == 0o700
        assert check_listen_addr(unix_addr(d, "spa")) is None
        open_dir = tmp_path / "open"
        open_dir.mkdir(mode=0o755)
        open_dir.chmod(0o755)
        with pytest.raises(ValueError, match="must be private"):
            check_listen_addr(unix_addr(open_dir, "spa"))
        with pytest.raises(ValueError, match="unix:/private/dir"):
            check_listen_addr("0.0.0.0:50000")
        assert "any local user" in check_listen_addr("127.0.0.1:50000")
        server = grpc.server(futures.ThreadPoolExecutor(1), options=EXCLUSIVE_PORT)
        addr = unix_addr(d, "svc")
        try:
            assert not addr_open(addr)
            assert bind(server, addr)
            server.start()
            assert addr_open(addr)
        finally:
            server.stop(None)
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
