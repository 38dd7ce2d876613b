/*
 * parser.p4: packet-out header (from the CPU port only), Ethernet, the DMSC
 * fixed header and up to MAX_PROBE_RECORDS probe records. TLVs stay payload:
 * the switch never needs them. Parser errors do not drop here; the validate
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

    state parse_dmsc {
        packet.extract(hdr.dmsc);
        transition select(hdr.dmsc.rec_count) {
            0: accept;
            default: parse_recs;
        }
    }

    // The loop counter is set only for frames that carry records: a parser
    // assignment costs BMv2 as much as a condition, and most frames have none.
    state parse_recs {
        meta.recs_left = hdr.dmsc.rec_count;
        transition parse_rec;
    }

    // More than MAX_PROBE_RECORDS records raises StackOutOfBounds: validate drops it.
    state parse_rec {
        packet.extract(hdr.recs.next);
        meta.recs_left = meta.recs_left - 1;
        transition select(meta.recs_left) {
            0: accept;
            default: parse_rec;
        }
    }
}

control DmscDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.dmsc);
        packet.emit(hdr.recs);
    }
}

control DmscVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }   // no checksum: frame integrity is the link's job, LSAs carry HMACs
}

control DmscComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

#endif
