/*
 * parser.p4: packet-out header (from the CPU port only), Ethernet, the DMSC
 * fixed header. Probe records and TLVs stay payload: the switch never reads
 * them (it checks rec_count and tlv_len against the frame's length). Parser
 * errors do not drop here; the validate control reads
 * standard_metadata.parser_error and drops with a counted reason.
 *
 * The parser also sorts frames for ingress, where it is cheap: a select
 * matches bytes, while a condition in a control costs BMv2 an operation on
 * bignums for every operator. A DMSC frame of our version, of a type forwarded
 * by name, with a hop left and no probe records leaves the parser as it is; the
 * same with 1 to MAX_PROBE_RECORDS records (probes and their replies) with
 * PATH_RECORDS in meta.path_cfg (its length check has the records to count);
 * anything else (control types, hop limit spent, other versions, too many
 * records, other EtherTypes, ports from 256 up) with PATH_NOT_COMMON, after the
 * headers it has. So ingress tests one field to know which path a frame takes.
 * (Not through parser_error with verify(): BMv2 raises a C++ exception for it,
 * about 13,700 instructions a frame off the common path.)
 */
#ifndef _DMSC_PARSER_P4_
#define _DMSC_PARSER_P4_

parser DmscParser(packet_in packet,
                  out headers_t hdr,
                  inout metadata_t meta,
                  inout standard_metadata_t std_meta) {
    // Ports from 256 up never take the common path: ingress_config's mask
    // cannot tell their role (BMv2 shifts by 8 bits at most), so they are pod
    // ports, and the same Ethernet and DMSC states end in not_common_path.
    state start {
        transition select(std_meta.ingress_port) {
            CPU_PORT: parse_packet_out;
            0x100 &&& 0x100: parse_ethernet_port_256_up;
            default: parse_ethernet;
        }
    }

    state parse_ethernet_port_256_up {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_DMSC: parse_dmsc_port_256_up;
            default: not_common_path;
        }
    }

    state parse_dmsc_port_256_up {
        packet.extract(hdr.dmsc);
        transition not_common_path;
    }

    state parse_packet_out {
        packet.extract(hdr.packet_out);
        transition parse_ethernet;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_DMSC: parse_dmsc;
            default: not_common_path;
        }
    }

    // The probe records already in a frame are not parsed: the switch only
    // pushes its own in front of them (ProbeRecord), so they stay payload and
    // the PHV that BMv2 resets for every frame holds one record, not twelve.
    // Data types (IS_DATA, define.p4): REQUEST..ERROR (1-3) and PROBE,
    // PROBE_REPLY (10, 11); records: none, or 1..MAX_PROBE_RECORDS (12) as masks
    // after the cases with none: 0-7, 8-11, 12.
    state parse_dmsc {
        packet.extract(hdr.dmsc);
        transition select(hdr.dmsc.version, hdr.dmsc.type, hdr.dmsc.hop_limit,
                          hdr.dmsc.rec_count) {
            (_, _, 0, _): not_common_path;                                  // no hop left
            (DMSC_VERSION, TYPE_REQUEST, _, 0): accept;
            (DMSC_VERSION, TYPE_RESPONSE &&& 0xFE, _, 0): accept;           // 2, 3
            (DMSC_VERSION, TYPE_PROBE &&& 0xFE, _, 0): accept;              // 10, 11
            (DMSC_VERSION, TYPE_REQUEST, _, 0 &&& 0xF8): common_path_records;
            (DMSC_VERSION, TYPE_REQUEST, _, 8 &&& 0xFC): common_path_records;
            (DMSC_VERSION, TYPE_REQUEST, _, 12): common_path_records;
            (DMSC_VERSION, TYPE_RESPONSE &&& 0xFE, _, 0 &&& 0xF8): common_path_records;
            (DMSC_VERSION, TYPE_RESPONSE &&& 0xFE, _, 8 &&& 0xFC): common_path_records;
            (DMSC_VERSION, TYPE_RESPONSE &&& 0xFE, _, 12): common_path_records;
            (DMSC_VERSION, TYPE_PROBE &&& 0xFE, _, 0 &&& 0xF8): common_path_records;
            (DMSC_VERSION, TYPE_PROBE &&& 0xFE, _, 8 &&& 0xFC): common_path_records;
            (DMSC_VERSION, TYPE_PROBE &&& 0xFE, _, 12): common_path_records;
            default: not_common_path;
        }
    }

    state common_path_records {
        meta.path_cfg = PATH_RECORDS;
        transition accept;
    }

    state not_common_path {
        meta.path_cfg = PATH_NOT_COMMON;
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
