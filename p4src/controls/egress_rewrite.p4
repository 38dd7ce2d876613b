/*
 * egress_rewrite.p4: what a frame becomes on its way out.
 *
 * To the CPU port: a packet_in header with the ingress port and punt reason.
 * To any other port: the Ethernet source becomes that port's MAC (port_mac
 * table); the destination MAC was set by the policy or FIB next hop.
 */
#ifndef _DMSC_EGRESS_REWRITE_P4_
#define _DMSC_EGRESS_REWRITE_P4_

control EgressRewrite(inout headers_t hdr,
                      inout metadata_t meta,
                      inout standard_metadata_t std_meta) {
    action set_src_mac(mac_addr_t smac) {
        hdr.ethernet.src_addr = smac;
    }

    table port_mac {
        key = {
            std_meta.egress_port: exact @name("port");
        }
        actions = { set_src_mac; NoAction; }
        default_action = NoAction();
        size = 512;
    }

    apply {
        if (meta.routed == 0 && std_meta.egress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = (bit<16>) std_meta.ingress_port;
            hdr.packet_in.reason = meta.punt_reason;
        } else if (meta.routed == 1 || meta.from_cpu == 0) {
            // an agent's packet-out without the route flag leaves as written
            port_mac.apply();
        }
    }
}

#endif
