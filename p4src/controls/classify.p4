/*
 * classify.p4: port roles and control frames.
 *
 * Each port is pod-facing or core-facing (port_role table; unknown ports are
 * pod-facing, the safe default). Link-local signaling goes to the agent:
 * announcements/withdrawals only from pod-facing ports, hellos/LSAs/LSA-acks
 * only from core-facing ports; anything else of those types is dropped and
 * counted, so a pod can never inject routing state. Types that only the agent
 * originates (announce ack/nack) are refused on any port. Data types (request,
 * response, error, probe, probe reply) fall through to forwarding.
 */
#ifndef _DMSC_CLASSIFY_P4_
#define _DMSC_CLASSIFY_P4_

control Classify(inout headers_t hdr,
                 inout metadata_t meta,
                 inout standard_metadata_t std_meta) {
    action set_role(bit<8> role) {
        meta.role = role;
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
        meta.drop = 1;
        meta.drop_reason = reason;
    }

    action punt(bit<8> reason) {
        meta.punt_reason = reason;
    }

    apply {
        port_role.apply();
        bit<8> t = hdr.dmsc.type;
        if (t == TYPE_HELLO || t == TYPE_LSA || t == TYPE_LSA_ACK) {
            if (meta.role == ROLE_CORE) {
                punt(PUNT_CONTROL);
            } else {
                reject(DROP_CTRL_FROM_POD);
            }
        } else if (t == TYPE_ANNOUNCE || t == TYPE_WITHDRAW) {
            if (meta.role == ROLE_POD) {
                punt(PUNT_ANNOUNCE);
            } else {
                reject(DROP_ANNOUNCE_FROM_CORE);
            }
        } else if (t == TYPE_ANNOUNCE_ACK || t == TYPE_ANNOUNCE_NACK) {
            reject(DROP_UNEXPECTED_TYPE);
        } else if (t == TYPE_REQUEST || t == TYPE_RESPONSE || t == TYPE_ERROR
                   || t == TYPE_PROBE || t == TYPE_PROBE_REPLY) {
            // data: forwarded by name
        } else {
            reject(DROP_BAD_TYPE);
        }
    }
}

#endif
