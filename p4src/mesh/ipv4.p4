/*
 * p4src/mesh/ipv4.p4: the service-mesh baseline's data plane (`--mode mesh`,
 * docs/mesh.md). A plain IPv4 router on the same switches, ports and links as
 * the DMSC program: parse Ethernet + IPv4 (+ the TCP/UDP ports for the hash),
 * longest-prefix match on the destination address, one next hop or a group of
 * equal-cost next hops (ECMP) through an action selector hashing the 5-tuple,
 * so one connection keeps one path; TTL decremented and the header checksum
 * updated (the pods' kernels check it); the source MAC rewritten on egress.
 * MACs are static and known to the controller (as in the DMSC program): no
 * ARP reaches a switch, the pods hold a permanent neighbour entry for their
 * gateway. A miss, an expiring TTL or a non-IPv4 frame is dropped and counted
 * by reason.
 */
#include <core.p4>
#include <v1model.p4>

typedef bit<9> port_t;
typedef bit<48> mac_addr_t;

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8> PROTO_TCP = 6;
const bit<8> PROTO_UDP = 17;

// Drop reasons: the index of drop_reasons.
const bit<32> MESH_DROP_NOT_IPV4 = 0;
const bit<32> MESH_DROP_TTL = 1;
const bit<32> MESH_DROP_NO_ROUTE = 2;

header ethernet_t { mac_addr_t dst_addr; mac_addr_t src_addr; bit<16> ether_type; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
    bit<16> identification; bit<3> flags; bit<13> frag_offset;
    bit<8> ttl; bit<8> protocol; bit<16> hdr_checksum;
    bit<32> src_addr; bit<32> dst_addr;
}
header l4_ports_t { bit<16> src_port; bit<16> dst_port; }   // TCP's and UDP's first word

struct headers_t { ethernet_t ethernet; ipv4_t ipv4; l4_ports_t l4; }
struct metadata_t { bit<16> l4_src; bit<16> l4_dst; }

parser MeshParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t std_meta) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        // Options (ihl > 5) and fragments: routed on the fixed header, hashed without ports.
        transition select(hdr.ipv4.ihl, hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (5, 0, PROTO_TCP): parse_l4;
            (5, 0, PROTO_UDP): parse_l4;
            default: accept;
        }
    }
    state parse_l4 {
        packet.extract(hdr.l4);
        meta.l4_src = hdr.l4.src_port;
        meta.l4_dst = hdr.l4.dst_port;
        transition accept;
    }
}

control MeshVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control MeshIngress(inout headers_t hdr, inout metadata_t meta,
                    inout standard_metadata_t std_meta) {
    counter(3, CounterType.packets) drop_reasons;
    direct_counter(CounterType.packets_and_bytes) route_counter;
    action_selector(HashAlgorithm.crc16, 32w32768, 32w14) ecmp_selector;

    action set_next_hop(port_t port, mac_addr_t dmac) {
        std_meta.egress_spec = port;
        hdr.ethernet.dst_addr = dmac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
        route_counter.count();
    }

    table routes {
        key = {
            hdr.ipv4.dst_addr: lpm @name("dst_addr");
            hdr.ipv4.src_addr: selector @name("src_addr");
            hdr.ipv4.dst_addr: selector @name("dst_addr_hash");
            hdr.ipv4.protocol: selector @name("protocol");
            meta.l4_src: selector @name("src_port");
            meta.l4_dst: selector @name("dst_port");
        }
        // No default action: BMv2 has none for action-selector tables; a
        // miss is seen through .hit below and dropped.
        actions = { set_next_hop; }
        implementation = ecmp_selector;
        counters = route_counter;
        size = 16384;
    }

    apply {
        if (!hdr.ipv4.isValid()) {
            drop_reasons.count(MESH_DROP_NOT_IPV4);
            mark_to_drop(std_meta);
        } else if (hdr.ipv4.ttl <= 1) {
            drop_reasons.count(MESH_DROP_TTL);
            mark_to_drop(std_meta);
        } else if (!routes.apply().hit) {
            drop_reasons.count(MESH_DROP_NO_ROUTE);
            mark_to_drop(std_meta);
        }
    }
}

control MeshEgress(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std_meta) {
    action set_src_mac(mac_addr_t smac) { hdr.ethernet.src_addr = smac; }
    table port_mac {
        key = { std_meta.egress_port: exact @name("port"); }
        actions = { set_src_mac; NoAction; }
        default_action = NoAction();
    }
    apply { port_mac.apply(); }
}

control MeshCompute(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset,
              hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control MeshDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.l4);
    }
}

V1Switch(MeshParser(), MeshVerify(), MeshIngress(), MeshEgress(), MeshCompute(),
         MeshDeparser()) main;
