"""The DMSC control plane. An announcement's path through it:

    pod --type 1--> SG agent (agent/) --type 3--> SPA (spa/, to come)
        --> LSA, flooding, SPF (routing/) --> FIB writes (switch/) --> every switch

switch/   -- the switch as the control plane drives it: p4rt (the one P4Runtime
             adapter), p4names (GENERATED P4Info names), tables (base entries
             and the FIB, diffed and written in batches), artifacts (paths of
             the compiled program)
routing/  -- the routing protocol, no I/O: router (hellos, LSAs, flooding,
             SPF scheduling), lsdb, spf (ECMP + anycast), route (what a FIB
             entry means)
agent/    -- the per-switch process: packet I/O, FIB writer, admin gRPC
             (process; ``python -m controller.agent``), admin (its service and client)
proto/    -- our .proto files and their generated code
tools/    -- operator tools: cli (``dmsc``), converge (read FIBs until they
             equal SPF), static (FIBs from the file alone)

Imports run one way (tests/unit/test_layout.py): controller/ may use the
model and the wire format; only tools/ may use the emulation.
"""
