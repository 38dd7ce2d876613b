/*
 * policy.p4: SCSC forwarding policy, applied before the FIB.
 *
 * A hit overrides the FIB for the matched names: the SCSC (a later issue)
 * steers a service's traffic to a chosen replica or around a degraded path.
 * Ternary on destination and source keys, so a policy can cover a whole
 * prefix or only the requests of one client. A miss leaves the FIB in charge,
 * which is why forwarding goes on when the SCSC is down. main.p4 applies the
table only when the control plane has set the policy stage on (ingress_config):
with no policy installed, a frame does not pay for a lookup that must miss.
 */
#ifndef _DMSC_POLICY_P4_
#define _DMSC_POLICY_P4_

control Policy(inout headers_t hdr,
               inout metadata_t meta,
               inout standard_metadata_t std_meta) {
    direct_counter(CounterType.packets_and_bytes) policy_counter;

    action policy_forward(port_t port, mac_addr_t dmac) {
        std_meta.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        hdr.dmsc.hop_limit = hdr.dmsc.hop_limit - 1;   // main.p4 checked it is > 0
        meta.verdict = VERDICT_ROUTED;
        policy_counter.count();
    }

    action policy_drop() {
        meta.verdict = VERDICT_DROP;
        meta.drop_reason = DROP_POLICY;
        policy_counter.count();
    }

    action policy_none() {
        policy_counter.count();
    }

    table policy {
        key = {
            hdr.dmsc.dst_key: ternary @name("dst_key");
            hdr.dmsc.src_key: ternary @name("src_key");
        }
        actions = { policy_forward; policy_drop; policy_none; }
        default_action = policy_none();
        counters = policy_counter;
        size = 1024;
    }

    apply {
        policy.apply();
    }
}

#endif
