/*
 * classify.p4: port roles and control frames.
 *
 * Each port is pod-facing or core-facing (port_role table; unknown ports are
 * pod-facing, the safe default). Link-local signaling goes to the agent:
 * announcements/withdrawals only from pod-facing ports, hellos/LSAs/LSA-acks
 * only from core-facing ports; anything else of those types is dropped and
 * counted, so a pod can never inject routing state. Types that only the agent
 * originates (announce ack/nack) are refused on any port. Data types (request,
 * response, error, probe, probe reply) never come here: main.p4 forwards them.
 *
 * Echoes (liveness, BFD's echo mode in the data plane: docs/dataplane.md) are
 * handled here without the agent: on a core port an echo is reflected out of
 * the port it came in on (destination MAC := its source; egress's port_mac
 * sets the source), with FLAG_ECHO_REFLECTED set; a reflected echo is counted
 * in echo_rx[ingress port] and dropped. Neither is ever punted or forwarded
 * anywhere else; on a pod port either is dropped (echo_from_pod).
 */
#ifndef _DMSC_CLASSIFY_P4_
#define _DMSC_CLASSIFY_P4_

control Classify(inout headers_t hdr,
                 inout metadata_t meta,
                 inout standard_metadata_t std_meta) {
    // The role is held in drop_reason, which nothing reads before a verdict of
    // drop sets it (headers.p4: a metadata field less for every frame).
    action set_role(bit<8> role) {
        meta.drop_reason = (bit<32>) role;
    }

    table port_role {
        key = {
            std_meta.ingress_port: exact @name("port");
        }
        actions = { set_role; }
        default_action = set_role(ROLE_POD);
        size = 512;
    }

    action reject(bit<32> reason) {
        meta.verdict = VERDICT_DROP;
        meta.drop_reason = reason;
    }

    action punt(bit<8> reason) {
        meta.punt_reason = reason;
    }

    // Reflected echoes back at the switch that sent them, by ingress port: the
    // agent reads the cells of its core ports in one P4Runtime read a round
    // (controller/agent/liveness.py).
    counter<port_t>(N_PORTS, CounterType.packets) echo_rx;

    action reflect_echo() {
        hdr.ethernet.dst_addr = hdr.ethernet.src_addr;
        hdr.dmsc.flags = hdr.dmsc.flags | FLAG_ECHO_REFLECTED;
        std_meta.egress_spec = std_meta.ingress_port;
        meta.verdict = VERDICT_ROUTED;       // egress: port_mac sets the source MAC
    }

    action echo_returned() {
        echo_rx.count(std_meta.ingress_port);
        meta.verdict = VERDICT_CONSUMED;
        mark_to_drop(std_meta);
    }

    // Only frames that are not data (IS_DATA below) come here: each is punted
    // or refused, and the port's role is looked up only for them.
    apply {
        port_role.apply();
        if (hdr.dmsc.type == TYPE_ECHO) {
            if (meta.drop_reason != (bit<32>) ROLE_CORE) {
                reject(DROP_ECHO_FROM_POD);
            } else if ((hdr.dmsc.flags & FLAG_ECHO_REFLECTED) == 0) {
                reflect_echo();
            } else {
                echo_returned();
            }
        } else if (hdr.dmsc.type == TYPE_HELLO || hdr.dmsc.type == TYPE_LSA
                || hdr.dmsc.type == TYPE_LSA_ACK) {
            if (meta.drop_reason == (bit<32>) ROLE_CORE) {
                punt(PUNT_CONTROL);
            } else {
                reject(DROP_CTRL_FROM_POD);
            }
        } else if (hdr.dmsc.type == TYPE_ANNOUNCE || hdr.dmsc.type == TYPE_WITHDRAW) {
            if (meta.drop_reason == (bit<32>) ROLE_POD) {
                punt(PUNT_ANNOUNCE);
            } else {
                reject(DROP_ANNOUNCE_FROM_CORE);
            }
        } else if (hdr.dmsc.type == TYPE_ANNOUNCE_ACK || hdr.dmsc.type == TYPE_ANNOUNCE_NACK) {
            reject(DROP_UNEXPECTED_TYPE);
        } else {
            reject(DROP_BAD_TYPE);
        }
    }
}

// Data types (request, response, error, probe, probe reply) are forwarded by
// name: bit t of DATA_TYPES is set for each data type t. One shift and one
// mask instead of five comparisons (BMv2 evaluates every operator).
#define IS_DATA (((DATA_TYPES >> hdr.dmsc.type) & 1) == 1)

#endif
