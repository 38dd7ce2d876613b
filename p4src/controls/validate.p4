/*
 * validate.p4: refuse what is not a well-formed DMSC frame of our version.
 *
 * main.p4 tests WELL_FORMED on every frame off the common path; only a frame
 * that fails it comes here, to find which DROP_* reason applies. Every refusal
 * sets VERDICT_DROP with the reason; main.p4 counts and drops.
 */
#ifndef _DMSC_VALIDATE_P4_
#define _DMSC_VALIDATE_P4_

// A packet-out: its frame came in on the CPU port (the parser read a packet_out
// header first).
#define FROM_CPU (std_meta.ingress_port == CPU_PORT)

// The header's own lengths must fit in the frame (Ethernet padding may make
// the frame longer, never shorter); a packet-out's 3-byte header is counted
// in packet_length too.
#define DMSC_NEED_BYTES (ETH_HDR_BYTES + DMSC_HDR_BYTES \
        + ((bit<32>) hdr.dmsc.rec_count) * PROBE_REC_BYTES + (bit<32>) hdr.dmsc.tlv_len \
        + (FROM_CPU ? 32w3 : 32w0))

#define WELL_FORMED (std_meta.parser_error == error.NoError && hdr.dmsc.isValid() \
        && hdr.dmsc.version == DMSC_VERSION && hdr.dmsc.rec_count <= MAX_PROBE_RECORDS \
        && std_meta.packet_length >= DMSC_NEED_BYTES)

// The common path's checks: the parser did not set PATH_NOT_COMMON (a DMSC
// frame of our version, a data type, a hop left, at most MAX_PROBE_RECORDS
// records), so only the lengths are left, for a frame from a port (no
// packet-out header to count); without records, one term fewer.
#define LENGTHS_FIT_FROM_PORT (std_meta.packet_length >= ETH_HDR_BYTES + DMSC_HDR_BYTES \
           + ((bit<32>) hdr.dmsc.rec_count) * PROBE_REC_BYTES + (bit<32>) hdr.dmsc.tlv_len)
#define LENGTHS_FIT_FROM_PORT_NO_RECORDS (std_meta.packet_length >= ETH_HDR_BYTES \
           + DMSC_HDR_BYTES + (bit<32>) hdr.dmsc.tlv_len)

control Validate(inout headers_t hdr,
                 inout metadata_t meta,
                 inout standard_metadata_t std_meta) {
    action reject(bit<32> reason) {
        meta.verdict = VERDICT_DROP;
        meta.drop_reason = reason;
    }

    apply {
        if (std_meta.parser_error == error.PacketTooShort) {
            reject(DROP_TRUNCATED);
        } else if (std_meta.parser_error != error.NoError) {
            reject(DROP_PARSER_OTHER);
        } else if (!hdr.dmsc.isValid()) {
            reject(DROP_NOT_DMSC);
        } else if (hdr.dmsc.version != DMSC_VERSION) {
            reject(DROP_BAD_VERSION);
        } else if (hdr.dmsc.rec_count > MAX_PROBE_RECORDS) {
            reject(DROP_TOO_MANY_RECORDS);
        } else {
            reject(DROP_BAD_LENGTH);
        }
    }
}

#endif
