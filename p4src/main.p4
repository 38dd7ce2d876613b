/*
 * main.p4: the DMSC service gateway / service router, P4_16 on v1model.
 *
 * One program for SG and SR; table entries give the roles. This file only
 * wires the features together:
 *
 *   ingress: ingress_config (port_in counter, policy stage on/off)
 *            -> packet-out? -> well formed? (else Validate finds the reason)
 *            -> data? (else Classify: port roles, control frames)
 *            -> hop limit -> Policy (SCSC, only when installed) -> Fib (LPM + ECMP)
 *            -> count the one drop or punt reason and act on it
 *
 * The common path (a data frame forwarded by the FIB) applies three tables
 * (ingress_config, fib, port_mac) and ten conditions: BMv2 builds debug
 * strings for every table, condition and primitive even with logging off, so
 * each one costs (docs/decisions.md, "Data plane profile").
 *   egress:  EgressRewrite (packet_in / source MAC) -> ProbeRecord
 */
#include <core.p4>
#include <v1model.p4>

#include "include/define.p4"
#include "include/headers.p4"
#include "parser.p4"
#include "controls/validate.p4"
#include "controls/classify.p4"
#include "controls/policy.p4"
#include "controls/fib.p4"
#include "controls/egress_rewrite.p4"
#include "controls/probe.p4"

control DmscIngress(inout headers_t hdr,
                    inout metadata_t meta,
                    inout standard_metadata_t std_meta) {
    // One cell per DROP_* / PUNT_* reason: nothing leaves or dies uncounted.
    counter(N_DROP_REASONS, CounterType.packets) drop_reasons;
    counter(N_PUNT_REASONS, CounterType.packets) punt_reasons;
    // Every frame the program receives, by ingress port (the CPU port
    // included): `dmsc stats` compares it with the kernel's interface
    // counters to show frames lost before the P4 program.
    counter(N_PORTS, CounterType.packets) port_in;

    Validate() validate;
    Classify() classify;
    Policy() policy;
    Fib() fib;

    // Keyless: the control plane sets the default action. Applied to every
    // frame first, so its action is where port_in counts.
    action set_ingress_config(bit<1> policy_stage) {
        port_in.count((bit<32>) std_meta.ingress_port);
        meta.policy_stage = policy_stage;
    }

    table ingress_config {
        actions = { set_ingress_config; }
        default_action = set_ingress_config(0);   // no policy installed
    }

    apply {
        ingress_config.apply();
        if (meta.from_cpu == 1 && (hdr.packet_out.flags & PKTOUT_ROUTE) == 0) {
            // The agent names the port: send the frame as it is.
            std_meta.egress_spec = (port_t) hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else {
            // (A routed packet-out keeps its packet_out header valid: the
            // deparser never emits it.)
            if (!WELL_FORMED) {
                validate.apply(hdr, meta, std_meta);
            } else if (!IS_DATA && meta.from_cpu == 0) {
                classify.apply(hdr, meta, std_meta);   // punts or refuses it
            } else if (hdr.dmsc.hop_limit == 0) {
                // hop_limit counts the switches that may still forward the
                // frame; this one needs at least 1 (the FIB and policy
                // actions decrement it).
                meta.drop = 1;
                meta.drop_reason = DROP_HOP_LIMIT;
            } else {
                // Forward by name: the SCSC policy first, if any is installed.
                if (meta.policy_stage == 1) {
                    policy.apply(hdr, meta, std_meta);
                }
                if (meta.routed == 0 && meta.drop == 0) {
                    fib.apply(hdr, meta, std_meta);
                }
            }
            if (meta.drop == 1 || meta.punt_reason != 0) {
                if (meta.drop == 1) {
                    drop_reasons.count(meta.drop_reason);
                    mark_to_drop(std_meta);
                } else {
                    punt_reasons.count((bit<32>) meta.punt_reason);
                    std_meta.egress_spec = CPU_PORT;
                }
            }
        }
    }
}

control DmscEgress(inout headers_t hdr,
                   inout metadata_t meta,
                   inout standard_metadata_t std_meta) {
    EgressRewrite() rewrite;
    ProbeRecord() probe;

    apply {
        rewrite.apply(hdr, meta, std_meta);
        if (hdr.dmsc.isValid() && hdr.dmsc.type == TYPE_PROBE) {
            probe.apply(hdr, meta, std_meta);
        }
    }
}

V1Switch(DmscParser(),
         DmscVerifyChecksum(),
         DmscIngress(),
         DmscEgress(),
         DmscComputeChecksum(),
         DmscDeparser()) main;
