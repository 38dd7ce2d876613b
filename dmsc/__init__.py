"""The user's tools: the layer above the emulation (topologies/emu/), which
they drive; nothing below imports them.

cli            -- the ``dmsc`` console entry point (the command line alone)
commands/      -- each ``dmsc`` command's code, by group (up/demo, switch tables,
                  spa, scsc, offline)
actions/       -- run-time actions on a running network (failures, pods, attacks,
                  calls, reads), by name: the interactive CLI and experiments run them
interactive    -- the ``dmsc>`` prompt of ``dmsc up --cli`` (Mininet's CLI plus actions)
live_view      -- the page of ``dmsc up --view``
experiment/    -- ``dmsc experiment``: an experiment file run, recorded and reported
converge       -- read FIBs over P4Runtime until they equal SPF (tests, benchmarks, cli)
static         -- FIBs from the topology file alone (demo --static, data-plane tests)
stats          -- per-port kernel and P4 counters of a switch (``dmsc stats``)
pcap           -- captures decoded by the DMSC Wireshark dissector (``dmsc pcap``)
p4shell        -- p4runtime-shell's command line for a switch (``dmsc shell``)
attacks        -- names forged for the hijack tests and actions (CRC-32 twins)
prerequisites  -- what a network needs on this machine (``dmsc check``)
"""
