"""What every gRPC server of the testbed shares.

``EXCLUSIVE_PORT``: grpcio binds servers with SO_REUSEPORT by default, so a
second server on a port already taken binds too, and the kernel then shares the
port's connections between the two: calls meant for one agent reach another.
Every server of ours binds without it, so such a bind fails at once instead.
"""
EXCLUSIVE_PORT = [("grpc.so_reuseport", 0)]


def bind(server, addr: str) -> bool:
    """``server.add_insecure_port(addr)``: False when the address cannot be
    bound (grpcio answers 0 or raises, depending on the failure)."""
    try:
        return server.add_insecure_port(addr) != 0
    except RuntimeError:
        return False
