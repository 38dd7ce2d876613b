/*
 * validate.p4: refuse what is not a well-formed DMSC frame of our version.
 *
 * main.p4 tests WELL_FORMED, one condition, on every frame; only a frame that
 * fails it comes here, to find which DROP_* reason applies. Every refusal
 * sets meta.drop with the reason; main.p4 counts and drops.
 */
#ifndef _DMSC_VALIDATE_P4_
#define _DMSC_VALIDATE_P4_

// The header's own lengths must fit in the frame (Ethernet padding may make
// the frame longer, never shorter); a packet-out's 3-byte header is counted
// in packet_length too.
#define DMSC_NEED_BYTES (ETH_HDR_BYTES + DMSC_HDR_BYTES \
        + ((bit<32>) hdr.dmsc.rec_count) * PROBE_REC_BYTES + (bit<32>) hdr.dmsc.tlv_len \
        + ((bit<32>) meta.from_cpu) * 3)

#define WELL_FORMED (std_meta.parser_error == error.NoError && hdr.dmsc.isValid() \
        && hdr.dmsc.version == DMSC_VERSION && hdr.dmsc.rec_count <= MAX_PROBE_RECORDS \
        && std_meta.packet_length >= DMSC_NEED_BYTES)

// The same for a frame from a port (not the CPU): no packet-out header to
// count. BMv2 evaluates every operator of a condition (no short circuit), so
// the common path's condition leaves out the term it knows is zero.
#define WELL_FORMED_FROM_PORT (std_meta.parser_error == error.NoError && hdr.dmsc.isValid() \
        && hdr.dmsc.version == DMSC_VERSION && hdr.dmsc.rec_count <= MAX_PROBE_RECORDS \
        && std_meta.packet_length >= ETH_HDR_BYTES + DMSC_HDR_BYTES \
           + ((bit<32>) hdr.dmsc.rec_count) * PROBE_REC_BYTES + (bit<32>) hdr.dmsc.tlv_len)

control Validate(inout headers_t hdr,
                 inout metadata_t meta,
                 inout standard_metadata_t std_meta) {
    action reject(bit<32> reason) {
        meta.drop = 1;
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
