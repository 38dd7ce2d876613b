"""The centralized baseline: one controller process programs every switch.

Like an SDN controller or a service mesh's control plane (Istio's istiod),
and unlike DMSC's distributed agents, one process holds the whole network's
view and computes every switch's FIB from it; same P4 program, same pods,
same traffic, so the two modes can be measured against each other
(docs/central.md).

    switches --packet-in (discovery frames, pods' announcements, no-route)--> controller
    controller --gRPC--> SPA (the announcements, as an SG agent asks it)
    controller: view (sessions, links, held prefixes) --SPF per switch--> FIBs
    controller --batched P4Runtime writes, packet-outs--> every switch

view     -- the view (switches' own configuration, sessions, links from
            discovery frames, prefixes) and every switch's FIB from it: pure,
            no I/O
process  -- the process: a P4Runtime session per switch, the main loop
            (discovery, packet-ins, carrier, leases), the FIB writer, the SGs'
            gateway duties (controller/agent/gateway.py), the admin service;
            main() is ``python -m controller.central``
client   -- the admin service's client (tools, tests, benchmarks)
"""
