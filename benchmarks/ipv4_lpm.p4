/*
 * ipv4_lpm.p4: the baseline of benchmarks/dataplane.py.
 *
 * A minimal IPv4 router on v1model: parse Ethernet + IPv4, longest-prefix
 * match on the destination address, set port and next-hop MAC, decrement
 * TTL, rewrite the source MAC on egress. No checksum update (the DMSC program
 * has none either), no counters, no validation: the cheapest honest
 * LPM forwarder, so the ratio shows what the DMSC program's extra work costs.
 */
#include <core.p4>
#include <v1model.p4>

header ethernet_t { bit<48> dst_addr; bit<48> src_addr; bit<16> ether_type; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
    bit<16> identification; bit<3> flags; bit<13> frag_offset;
    bit<8> ttl; bit<8> protocol; bit<16> hdr_checksum;
    bit<32> src_addr; bit<32> dst_addr;
}
struct headers_t { ethernet_t ethernet; ipv4_t ipv4; }
struct metadata_t { }

parser LpmParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t std_meta) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            0x0800: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        transition accept;
    }
}

control LpmVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control LpmIngress(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std_meta) {
    action drop() { mark_to_drop(std_meta); }
    action forward(bit<9> port, bit<48> dmac) {
        std_meta.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }
    table ipv4_lpm {
        key = { hdr.ipv4.dst_addr: lpm @name("dst_addr"); }
        actions = { forward; drop; }
        default_action = drop();
        size = 16384;
    }
    apply {
        if (hdr.ipv4.isValid()) {
            ipv4_lpm.apply();
        } else {
            drop();
        }
    }
}

control LpmEgress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t std_meta) {
    action set_src_mac(bit<48> smac) { hdr.ethernet.src_addr = smac; }
    table port_mac {
        key = { std_meta.egress_port: exact @name("port"); }
        actions = { set_src_mac; NoAction; }
        default_action = NoAction();
    }
    apply { port_mac.apply(); }
}

control LpmCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control LpmDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
    }
}

V1Switch(LpmParser(), LpmVerify(), LpmIngress(), LpmEgress(), LpmCompute(), LpmDeparser()) main;
