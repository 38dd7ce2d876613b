/*
 * probe.p4: in-band measurement (DMSC 4.2 step 5).
 *
 * Every PROBE frame leaving any port of the switch, the CPU port included,
 * gets one record pushed in front of the record stack: switch id, ports,
 * ingress and egress timestamps and queue figures. Delay and jitter are
 * computed at the endpoints from these records, INT-style. When the stack is
 * full the frame goes on unrecorded with FLAG_PROBE_FULL set, so the reader
 * knows the path is longer than the records show.
 */
#ifndef _DMSC_PROBE_P4_
#define _DMSC_PROBE_P4_

control ProbeRecord(inout headers_t hdr,
                    inout metadata_t meta,
                    inout standard_metadata_t std_meta) {
    action set_switch_id(bit<32> switch_id) {
        hdr.rec.switch_id = switch_id;       // the record append_record pushed
    }

    // Keyless: the agent sets the default action to this switch's id.
    table switch_config {
        actions = { set_switch_id; }
        default_action = set_switch_id(0);
    }

    action append_record() {
        hdr.rec.setValid();          // deparsed right after the fixed header
        hdr.rec.ingress_port = (bit<16>) std_meta.ingress_port;
        hdr.rec.egress_port = (bit<16>) std_meta.egress_port;
        hdr.rec.ingress_ts = std_meta.ingress_global_timestamp;
        hdr.rec.egress_ts = std_meta.egress_global_timestamp;
        hdr.rec.enq_qdepth = (bit<32>) std_meta.enq_qdepth;
        hdr.rec.deq_timedelta = std_meta.deq_timedelta;
        hdr.dmsc.rec_count = hdr.dmsc.rec_count + 1;
    }

    apply {
        if (hdr.dmsc.rec_count < MAX_PROBE_RECORDS) {
            append_record();
            switch_config.apply();
        } else {
            hdr.dmsc.flags = hdr.dmsc.flags | FLAG_PROBE_FULL;
        }
    }
}

#endif
