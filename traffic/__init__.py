"""Pods, traffic and the DMSC wire format (what runs in a pod's namespace).

wire/    -- the wire format: names and keys, the struct codec, the Scapy
            layers, raw Ethernet I/O (depends on nothing else of ours)
pod      -- the pod process: serves service instances, answers probes
client   -- the RMI-style client: call("/B/4", "echo", {...}), and a bounded load loop

A request's path starts here: client -> (wire) -> the pod's SG.
"""
