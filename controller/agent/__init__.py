"""The per-switch agent process (one per SG and SR).

process  -- Agent: connects to its switch, runs the router, writes the FIB;
            main() is ``python -m controller.agent``
admin    -- its local admin gRPC service (127.0.0.1) and the client tools use
"""
