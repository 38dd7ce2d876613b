/*
 * main.p4: the DMSC service gateway / service router, P4_16 on v1model.
 *
 * One program for SG and SR; table entries give the roles. This file only
 * wires the features together:
 *
 *   ingress: packet-out? -> Validate -> Classify (port roles, control frames)
 *            -> hop limit -> Policy (SCSC) -> Fib (LPM + ECMP)
 *            -> count the one drop or punt reason and act on it
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

    apply {
        port_in.count((bit<32>) std_meta.ingress_port);
        if (meta.from_cpu == 1 && (hdr.packet_out.flags & PKTOUT_ROUTE) == 0) {
            // The agent names the port: send the frame as it is.
            std_meta.egress_spec = (port_t) hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else {
            hdr.packet_out.setInvalid();
            validate.apply(hdr, meta, std_meta);
            if (meta.drop == 0 && meta.from_cpu == 0) {
                classify.apply(hdr, meta, std_meta);
            }
            if (meta.drop == 0 && meta.punt_reason == 0) {
                // Forward by name. hop_limit counts the switches that may
                // still forward the frame; this one needs at least 1.
                if (hdr.dmsc.hop_limit == 0) {
                    meta.drop = 1;
                    meta.drop_reason = DROP_HOP_LIMIT;
                } else {
                    policy.apply(hdr, meta, std_meta);
                    if (meta.routed == 0 && meta.drop == 0) {
                        fib.apply(hdr, meta, std_meta);
                    }
                    if (meta.routed == 1) {
                        hdr.dmsc.hop_limit = hdr.dmsc.hop_limit - 1;
                    }
                }
            }
            if (meta.drop == 1) {
                drop_reasons.count(meta.drop_reason);
                mark_to_drop(std_meta);
            } else if (meta.punt_reason != 0) {
                punt_reasons.count((bit<32>) meta.punt_reason);
                std_meta.egress_spec = CPU_PORT;
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
