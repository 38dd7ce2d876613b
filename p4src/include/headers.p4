/*
 * headers.p4: the DMSC frame as the switch sees it, and the metadata that
 * travels with it. docs/wire-format.md and traffic/wire/ (codec and Scapy layers)
 * match this file field for field; tests/unit/test_wire_format.py checks it.
 *
 *   Ethernet (14) | DMSC fixed header (44) | probe records (28 each) | TLVs
 */
#ifndef _DMSC_HEADERS_P4_
#define _DMSC_HEADERS_P4_

#include "define.p4"

// Prepended to frames the switch sends to its agent (P4Runtime packet-in).
@controller_header("packet_in")
header packet_in_t {
    bit<16> ingress_port;
    bit<8>  reason;          // PUNT_*
}

// Prepended by the agent to frames it injects (P4Runtime packet-out).
@controller_header("packet_out")
header packet_out_t {
    bit<16> egress_port;     // used unless flags has PKTOUT_ROUTE
    bit<8>  flags;           // PKTOUT_*
}

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

// The fixed DMSC header: 44 bytes.
header dmsc_t {
    bit<8>     version;      // DMSC_VERSION
    bit<8>     type;         // TYPE_*
    bit<8>     flags;        // FLAG_*
    bit<8>     hop_limit;    // switches left that may forward the frame
    bit<32>    msg_id;       // request/response, probe and announcement correlation
    name_key_t dst_key;      // LPM key of the destination name
    name_key_t src_key;      // key of the source name (responses are routed to it)
    bit<8>     rec_count;    // probe records that follow this header
    bit<8>     reserved;     // zero on send, ignored on receive
    bit<16>    tlv_len;      // bytes of TLVs after the probe records
}

// One per-hop probe record, INT-style: 28 bytes, newest first.
header probe_rec_t {
    bit<32> switch_id;
    bit<16> ingress_port;
    bit<16> egress_port;
    bit<48> ingress_ts;      // microseconds, switch clock
    bit<48> egress_ts;       // microseconds, switch clock
    bit<32> enq_qdepth;      // packets queued ahead when this frame was enqueued
    bit<32> deq_timedelta;   // microseconds spent in the queue
}

struct headers_t {
    packet_out_t packet_out;
    packet_in_t  packet_in;
    ethernet_t   ethernet;
    dmsc_t       dmsc;
    probe_rec_t  rec;        // pushed by this switch in front of the frame's records
}

// BMv2 sets every metadata field to 0 for every frame it receives (about 640
// instructions a field: docs/dataplane.md), so this struct holds only what a
// frame's own path needs: flags that several stages read are folded into one
// field, and the widths add up to whole bytes (else p4c adds a padding field,
// reset like the others).
struct metadata_t {
    bit<8>  punt_reason;     // PUNT_* when the frame goes to the CPU
    bit<32> drop_reason;     // DROP_* when verdict is VERDICT_DROP (counted once, in main);
                             // until then scratch: the port's ROLE_* in Classify, a
                             // meter's colour in CoPP (main.p4)
    bit<4>  verdict;         // VERDICT_*: undecided, routed (policy or FIB chose a port), drop
    bit<4>  path_cfg;        // PATH_* (define.p4): from ingress_config, PATH_CORE (a
                             // core-facing port; else pod-facing: sources checked, punts
                             // metered) and PATH_POLICY (SCSC policies installed: look
                             // them up); from the parser, PATH_RECORDS and PATH_NOT_COMMON
}

#endif
