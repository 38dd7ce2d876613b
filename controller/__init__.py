"""The DMSC control plane.

p4rt        -- the one P4Runtime adapter (one Switch object per switch)
p4names     -- P4Info names and define.p4 constants (generated; checked by a test)
gen_p4names -- regenerates p4names from p4src/build and p4src/include/define.p4
fib         -- next-hop sets -> FIB table entries, diffed and written in batches
cli         -- the ``dmsc`` console entry point
"""
