/*
 * parser.p4: packet-out header (from the CPU port only), Ethernet, the DMSC
 * fixed header. Probe records and TLVs stay payload: the switch never reads
 * them (it checks rec_count and tlv_len against the frame's length). Parser errors do not drop here; the validate
 * control reads standard_metadata.parser_error and drops with a counted reason.
 */
#ifndef _DMSC_PARSER_P4_
#define _DMSC_PARSER_P4_

parser DmscParser(packet_in packet,
                  out headers_t hdr,
                  inout metadata_t meta,
                  inout standard_metadata_t std_meta) {
    state start {
        transition select(std_meta.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        packet.extract(hdr.packet_out);
        meta.from_cpu = 1;
        transition parse_ethernet;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_DMSC: parse_dmsc;
            default: accept;
        }
    }

    // The probe records already in a frame are not parsed: the switch only
    // pushes its own in front of them (ProbeRecord), so they stay payload and
    // the PHV that BMv2 resets for every frame holds one record, not twelve.
    state parse_dmsc {
        packet.extract(hdr.dmsc);
        transition accept;
    }
}

control DmscDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.dmsc);
        packet.emit(hdr.rec);      // the record this switch pushed, if any
    }
}

control DmscVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }   // no checksum: frame integrity is the link's job, LSAs carry HMACs
}

control DmscComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

#endif
