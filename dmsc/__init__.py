"""Operator tools: the only part of controller/ that may drive the emulation.

cli       -- the ``dmsc`` console entry point
converge  -- read FIBs over P4Runtime until they equal SPF (tests, benchmarks, cli)
static    -- FIBs from the topology file alone (demo --static, data-plane tests)
"""
