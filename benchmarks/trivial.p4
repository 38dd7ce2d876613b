/*
 * trivial.p4: the ceiling row of benchmarks/dataplane.py.
 *
 * A port-forward program on v1model: parse Ethernet, send every frame from
 * port 1 to port 2 (and from any other port to port 1). No table, no counter,
 * no header rewrite. What BMv2 costs to move a frame through a pipeline at all
 * (receive, parse, ingress, queue, egress, deparse, transmit) with nothing in
 * it: neither the IPv4 baseline nor the DMSC program can forward faster on
 * the same BMv2 build, so the rate of this row tells the reader where the
 * ceiling of that build is, and whether the generator could have offered more.
 */
#include <core.p4>
#include <v1model.p4>

header ethernet_t { bit<48> dst_addr; bit<48> src_addr; bit<16> ether_type; }
struct headers_t { ethernet_t ethernet; }
struct metadata_t { }

parser FwdParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t std_meta) {
    state start {
        packet.extract(hdr.ethernet);
        transition accept;
    }
}

control FwdVerify(inout headers_t hdr, inout metadata_t meta) { apply { } }

control FwdIngress(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std_meta) {
    apply {
        if (std_meta.ingress_port == 1) {
            std_meta.egress_spec = 2;
        } else {
            std_meta.egress_spec = 1;
        }
    }
}

control FwdEgress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t std_meta) { apply { } }

control FwdCompute(inout headers_t hdr, inout metadata_t meta) { apply { } }

control FwdDeparser(packet_out packet, in headers_t hdr) {
    apply { packet.emit(hdr.ethernet); }
}

V1Switch(FwdParser(), FwdVerify(), FwdIngress(), FwdEgress(), FwdCompute(), FwdDeparser()) main;
