/*
 * source.p4: a pod may only speak as itself (RFC 3704's strict uRPF, for names).
 *
 * A data frame (request, response, error, probe, probe reply) that enters from a
 * pod-facing port must carry a source key that port holds: one of the prefixes
 * the SG accepted from that port's pod (the SPA said valid), longest-prefix
 * matched. Anything else is dropped and counted DROP_SRC_NOT_HELD, so a pod
 * cannot have responses reflected to another pod, trigger SCSC policies keyed on
 * another caller, or answer probes as another instance. The SG's agent (or the
 * central controller) keeps the table in step with what it holds: an entry per
 * (pod port, accepted prefix), inserted with the acceptance and deleted with the
 * withdrawal. Core-facing ports (transit) and packet-outs are never checked:
 * main.p4 applies this only when ingress_config marked the port pod-facing
 * (unknown ports are, the safe default) and the frame did not come from the CPU.
 */
#ifndef _DMSC_SOURCE_P4_
#define _DMSC_SOURCE_P4_

control SourceGuard(inout headers_t hdr,
                    inout metadata_t meta,
                    inout standard_metadata_t std_meta) {
    action src_held() {
    }

    action src_not_held() {
        meta.verdict = VERDICT_DROP;
        meta.drop_reason = DROP_SRC_NOT_HELD;
    }

    table src_guard {
        key = {
            std_meta.ingress_port: exact @name("port");
            hdr.dmsc.src_key: lpm @name("src_key");
        }
        actions = { src_held; src_not_held; }
        default_action = src_not_held();
        size = 4096;
    }

    apply {
        src_guard.apply();
    }
}

#endif
