/*
 * fib.p4: the service-name FIB.
 *
 * Longest-prefix match on the destination name key (prefix length =
 * components x 32). Each entry points at one next hop or, through the action
 * selector, at a group of equal-cost next hops; the selector hashes the source
 * key, so one requester's frames to one prefix keep one path. A direct counter
 * per entry feeds telemetry (`dmsc fib`, the agent's FIB view); BMv2 counts a
direct counter inside the lookup, at no measurable cost. punt_local marks this switch's own names (probe
 * replies to an SG agent); a miss is punted with PUNT_NO_ROUTE so that the agent
 * can answer the requester with an ERROR frame instead of silence.
 */
#ifndef _DMSC_FIB_P4_
#define _DMSC_FIB_P4_

control Fib(inout headers_t hdr,
            inout metadata_t meta,
            inout standard_metadata_t std_meta) {
    direct_counter(CounterType.packets_and_bytes) fib_counter;
    // One-shot programming makes one group and one member per next hop per
    // entry: size the selector for a full FIB of ECMP entries.
    action_selector(HashAlgorithm.crc16, 32w32768, 32w14) fib_selector;

    action set_next_hop(port_t port, mac_addr_t dmac) {
        std_meta.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        hdr.dmsc.hop_limit = hdr.dmsc.hop_limit - 1;   // main.p4 checked it is > 0
        meta.verdict = VERDICT_ROUTED;
        fib_counter.count();
    }

    action punt_local() {
        meta.punt_reason = PUNT_LOCAL;
        fib_counter.count();
    }

    action drop_route() {
        meta.verdict = VERDICT_DROP;
        meta.drop_reason = DROP_FIB;
        fib_counter.count();
    }

    table fib {
        key = {
            hdr.dmsc.dst_key: lpm @name("dst_key");
            hdr.dmsc.src_key: selector @name("src_key");
        }
        // No default action: BMv2 has none for action-selector tables; a miss
        // is seen through .hit below.
        actions = { set_next_hop; punt_local; drop_route; }
        implementation = fib_selector;
        counters = fib_counter;
        size = 16384;
    }

    apply {
        fib.apply();   // a miss leaves the verdict undecided: main.p4 punts it (no_route)
    }
}

#endif
