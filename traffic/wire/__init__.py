"""The DMSC wire format, implemented once. Imports nothing else of ours.

defs    -- the numbers shared with the P4 program (GENERATED from define.p4:
           message types, flags, sizes, roles, drop and punt reasons)
names   -- service names, their fixed-width match keys, reserved switch names
codec   -- TLV types, status codes, struct encoder/decoder (no Scapy: the hot path)
layers  -- the same frame as Scapy layers, bound to EtherType 0x88B5, and the
           builders of requests, responses, errors and probes
link    -- raw Ethernet I/O on one interface (AF_PACKET)

Import the module you need: ``from traffic.wire import codec`` does not load
Scapy; only ``layers`` does. docs/wire-format.md is the prose version.
"""
