"""Pods, traffic and the DMSC wire format.

names    -- service names and their fixed-width match keys (the one encoding)
dmsc     -- Scapy layers for the DMSC frame (EtherType 0x88B5), bound to Ether
link     -- raw Ethernet I/O on one interface (AF_PACKET), no per-packet Scapy loop
pod      -- the pod process: serves service instances, answers probes
client   -- the RMI-style client: call("/B/4", "echo", {...})
"""
