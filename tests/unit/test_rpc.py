"""Ports of the testbed's own gRPC servers: never two servers on one port."""
from concurrent import futures

import grpc

from controller.rpc import EXCLUSIVE_PORT, bind
from topologies.emu import process
from topologies.emu.process import free_port


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
