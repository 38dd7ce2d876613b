/*
 * main.p4: the DMSC service gateway / service router, P4_16 on v1model.
 *
 * One program for SG and SR; table entries give the roles. This file only
 * wires the features together:
 *
 *   parser:  packet_out (CPU port) | Ethernet | DMSC fixed header; a select
 *            sorts frames: a data frame of our version with a hop left leaves
 *            as it is (no probe records) or with PATH_RECORDS (1 to 12), the
 *            rest with PATH_NOT_COMMON in meta.path_cfg
 *   ingress: ingress_config (port_in counter; port role and policy stage into
 *            meta.path_cfg: which ports are pod-facing (sources checked, punts
 *            metered), SCSC policies on or off)
 *            -> the common path: from a core port, no SCSC policy installed,
 *               NoError, the lengths within the frame -> Fib (LPM + ECMP)
 *            -> otherwise: packet-out? -> well formed? (else Validate finds the
 *               reason) -> data? (else Classify: port roles, control frames)
 *               -> hop limit -> SourceGuard (pod ports) -> Policy (SCSC, when
 *               installed) -> Fib
 *            -> not forwarded: a FIB miss becomes a punt; a punt from a pod port
 *               passes its port's meter (CoPP: announcements, and the rest)
 *               or is dropped; count the one drop or punt reason and act on it
 *   egress:  forwarded, not a probe -> port_mac (source MAC); otherwise
 *            ProbeRecord, packet_in header to the CPU, or port_mac
 *
 * The common path applies three tables (ingress_config, fib, port_mac) and
 * three conditions. In BMv2 every operator of a condition is an operation on
 * bignums (no short circuit), every field an action writes and every metadata
 * field (reset for each frame) costs about 640 instructions, and a select in
 * the parser matches bytes: docs/dataplane.md (benchmarks/dataplane_instr.py
 * counts the instructions per frame).
 */
#include <core.p4>
// counter<I> and meter<I>: indexed by a field of its own width, no cast
#define V1MODEL_VERSION 20200408
#include <v1model.p4>

#include "include/define.p4"
#include "include/headers.p4"
#include "parser.p4"
#include "controls/validate.p4"
#include "controls/classify.p4"
#include "controls/source.p4"
#include "controls/policy.p4"
#include "controls/fib.p4"
#include "controls/probe.p4"

control DmscIngress(inout headers_t hdr,
                    inout metadata_t meta,
                    inout standard_metadata_t std_meta) {
    // One cell per DROP_* / PUNT_* reason: nothing leaves or dies uncounted.
    // (Indexed by the fields themselves, of their own widths: a cast to bit<32>
    // would be one more metadata field for BMv2 to write and reset.)
    counter<bit<32>>(N_DROP_REASONS, CounterType.packets) drop_reasons;
    counter<bit<8>>(N_PUNT_REASONS, CounterType.packets) punt_reasons;
    // Every frame the program receives, by ingress port (the CPU port
    // included): `dmsc stats` compares it with the kernel's interface
    // counters to show frames lost before the P4 program.
    counter<port_t>(N_PORTS, CounterType.packets) port_in;
    // Control-plane policing (CoPP, as routers police what they punt): what a
    // pod-facing port sends to the CPU passes a meter of that port, one for
    // announcements/withdrawals and one for every other punt (probe replies to
    // the SG, FIB misses). The agent configures rate and burst over P4Runtime;
    // an unconfigured meter is green. Red is dropped here and counted, so one
    // pod cannot flood its SG's agent (the CPU port's queue, the agent, the SPA).
    meter<port_t>(N_PORTS, MeterType.packets) announce_meter;
    meter<port_t>(N_PORTS, MeterType.packets) punt_meter;

    Validate() validate;
    Classify() classify;
    SourceGuard() source_guard;
    Policy() policy;
    Fib() fib;

    // Keyless: the control plane sets the default action. Applied to every
    // frame first, so its action is where port_in counts. ``core_ports`` has bit
    // p set for each core-facing port p < 128; every other port (pod-facing,
    // unknown, or 128 and above) is a pod port:
    // sources checked, punts metered. A bit mask instead of a key on the port:
    // a keyed lookup cost the common path 32,500 BMv2 instructions a frame
    // (docs/dataplane.md), a shift and a mask a fraction of that. (P4Runtime in
    // PI writes no registers or value sets.) Port role and policy stage join the
    // parser's bits in one field: the common path tests it once.
    action set_ingress_config(bit<1> policy_stage, bit<128> core_ports) {
        port_in.count(std_meta.ingress_port);
        // (BMv2 shifts by 8 bits at most: the parser sends ports from 256 up,
        // which would read bit p - 256, off the common path, and POD_PORT
        // counts them as pod ports.)
        meta.path_cfg = meta.path_cfg
                        | (bit<4>) (policy_stage ++ (core_ports >> std_meta.ingress_port[7:0])[0:0]);
    }

    // Off the common path: a pod-facing port (the safe default for any port
    // the mask does not name; from 256 up the mask cannot name one).
#define POD_PORT ((meta.path_cfg & PATH_CORE) == 0 || std_meta.ingress_port[8:8] == 1)

    table ingress_config {
        actions = { set_ingress_config; }
        default_action = set_ingress_config(0, 0);   // no policy; every port a pod port
    }

    apply {
        ingress_config.apply();
        if (meta.path_cfg == PATH_CORE && LENGTHS_FIT_FROM_PORT_NO_RECORDS) {
            // The common path: from a core port, no SCSC policy installed, a
            // data frame of our version with a hop left and no probe records
            // (the parser checked those), its lengths within the frame.
            fib.apply(hdr, meta, std_meta);
        } else if (meta.path_cfg == (PATH_CORE | PATH_RECORDS) && LENGTHS_FIT_FROM_PORT) {
            // The same with probe records (probes and their replies).
            fib.apply(hdr, meta, std_meta);
        } else if (FROM_CPU && hdr.packet_out.isValid()
                   && (hdr.packet_out.flags & PKTOUT_ROUTE) == 0) {
            // The agent names the port: send the frame as it is.
            std_meta.egress_spec = (port_t) hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else {
            // (A routed packet-out keeps its packet_out header valid: the
            // deparser never emits it.)
            if (!WELL_FORMED) {
                validate.apply(hdr, meta, std_meta);
            } else if (!IS_DATA && !FROM_CPU) {
                classify.apply(hdr, meta, std_meta);   // punts or refuses it
            } else if (hdr.dmsc.hop_limit == 0) {
                meta.verdict = VERDICT_DROP;
                meta.drop_reason = DROP_HOP_LIMIT;
            } else {
                if (POD_PORT && !FROM_CPU) {
                    source_guard.apply(hdr, meta, std_meta);   // a pod speaks as itself
                }
                if ((meta.path_cfg & PATH_POLICY) != 0
                        && meta.verdict == VERDICT_UNDECIDED) {
                    policy.apply(hdr, meta, std_meta);
                }
                if (meta.verdict == VERDICT_UNDECIDED) {
                    fib.apply(hdr, meta, std_meta);
                }
            }
        }
        if (meta.verdict != VERDICT_ROUTED) {
            // Not forwarded by the policy or the FIB: count why.
            if (meta.verdict == VERDICT_UNDECIDED && meta.punt_reason == 0
                    && (!FROM_CPU || hdr.packet_out.isValid())) {
                // A FIB miss. (The one frame that leaves unrouted without a
                // reason is a packet-out to a named port: its packet_out
                // header was removed above; a routed one keeps it.)
                meta.punt_reason = PUNT_NO_ROUTE;
            }
            if (meta.punt_reason != 0 && POD_PORT && !FROM_CPU) {
                // The meter's colour lands in drop_reason, which is set to the
                // reason right after (a field fewer for BMv2 to reset per frame).
                if (meta.punt_reason == PUNT_ANNOUNCE) {
                    announce_meter.execute_meter(std_meta.ingress_port, meta.drop_reason);
                    if (meta.drop_reason == (bit<32>) METER_RED) {
                        meta.verdict = VERDICT_DROP;
                    }
                    meta.drop_reason = DROP_ANNOUNCE_POLICED;
                } else {
                    punt_meter.execute_meter(std_meta.ingress_port, meta.drop_reason);
                    if (meta.drop_reason == (bit<32>) METER_RED) {
                        meta.verdict = VERDICT_DROP;
                    }
                    meta.drop_reason = DROP_PUNT_POLICED;
                }
            }
            if (meta.verdict == VERDICT_DROP) {
                drop_reasons.count(meta.drop_reason);
                mark_to_drop(std_meta);
            } else if (meta.punt_reason != 0) {
                punt_reasons.count(meta.punt_reason);
                std_meta.egress_spec = CPU_PORT;
            }
        }
    }
}

control DmscEgress(inout headers_t hdr,
                   inout metadata_t meta,
                   inout standard_metadata_t std_meta) {
    ProbeRecord() probe;

    // To any port but the CPU's: the Ethernet source becomes that port's MAC
    // (the destination MAC was set by the policy or FIB next hop). Named
    // rewrite.* as when it had a control of its own (P4Info names unchanged).
    @name("rewrite.set_src_mac")
    action set_src_mac(mac_addr_t smac) {
        hdr.ethernet.src_addr = smac;
    }

    @name("rewrite.port_mac")
    table port_mac {
        key = {
            std_meta.egress_port: exact @name("port");
        }
        actions = { set_src_mac; NoAction; }
        default_action = NoAction();
        size = 512;
    }

    apply {
        if (meta.verdict == VERDICT_ROUTED && hdr.dmsc.type != TYPE_PROBE) {
            // The common path: forwarded by the policy or the FIB, not a
            // probe. One condition, then the source MAC.
            port_mac.apply();
        } else {
            if (hdr.dmsc.isValid() && hdr.dmsc.type == TYPE_PROBE) {
                probe.apply(hdr, meta, std_meta);     // push this switch's record
            }
            if (meta.verdict != VERDICT_ROUTED && std_meta.egress_port == CPU_PORT) {
                // To the CPU: a packet_in header with the port and the reason.
                hdr.packet_in.setValid();
                hdr.packet_in.ingress_port = (bit<16>) std_meta.ingress_port;
                hdr.packet_in.reason = meta.punt_reason;
            } else if (meta.verdict == VERDICT_ROUTED || !FROM_CPU) {
                // (an agent's packet-out without the route flag leaves as written)
                port_mac.apply();
            }
        }
    }
}

V1Switch(DmscParser(),
         DmscVerifyChecksum(),
         DmscIngress(),
         DmscEgress(),
         DmscComputeChecksum(),
         DmscDeparser()) main;
