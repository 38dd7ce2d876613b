"""The DMSC control plane.

p4rt        -- the one P4Runtime adapter (one Switch object per switch)
p4names     -- P4Info names and define.p4 constants (generated; checked by a test)
gen_p4names -- regenerates p4names from p4src/build and p4src/include/define.p4
fib         -- next-hop sets -> FIB table entries, diffed and written in batches
route       -- what a FIB entry means (Hop, Route), independent of the P4 program
static      -- FIBs from the topology file alone (demo --static, data-plane tests)
routing     -- the routing core: hellos, LSAs, flooding, SPF scheduling (no I/O)
lsdb, spf   -- the link-state database and SPF with ECMP + anycast
agent       -- the per-switch agent process (protocol thread + FIB writer)
admin       -- client of an agent's local admin service
converge    -- read FIBs over P4Runtime and wait until they equal SPF
proto/      -- routing.proto and its generated code
cli         -- the ``dmsc`` console entry point
"""
