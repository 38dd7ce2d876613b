/*
 * define.p4: named constants shared by every part of the DMSC program.
 *
 * The numeric values here are part of the wire format (docs/wire-format.md) and
 * of the controller's API: controller/p4names.py is generated from this file and
 * the P4Info, and a test fails if the two disagree.
 */
#ifndef _DMSC_DEFINE_P4_
#define _DMSC_DEFINE_P4_

typedef bit<48> mac_addr_t;
typedef bit<9>  port_t;
typedef bit<128> name_key_t;   // NAME_COMPONENTS x COMPONENT_BITS

const bit<16> ETHERTYPE_DMSC = 0x88B5;   // IEEE 802 local experimental 1
const bit<8>  DMSC_VERSION   = 1;

// CPU port of simple_switch_grpc (--cpu-port); packet-in/out use it.
const port_t  CPU_PORT = 255;
// Cells of per-port counters: every port number of a bit<9> port_t but the
// drop port (511), so the CPU port (255) has its own cell.
#define N_PORTS 512

// Name key: 4 components x 32 bits (CRC-32 of each component).
const bit<32> NAME_COMPONENTS = 4;
const bit<32> COMPONENT_BITS  = 32;

// Fixed header and per-hop probe record sizes, in bytes.
const bit<32> DMSC_HDR_BYTES    = 44;
const bit<32> PROBE_REC_BYTES   = 28;
const bit<32> ETH_HDR_BYTES     = 14;
#define MAX_PROBE_RECORDS 12

// Message types (dmsc.type).
const bit<8> TYPE_REQUEST       = 1;
const bit<8> TYPE_RESPONSE      = 2;
const bit<8> TYPE_ERROR         = 3;
const bit<8> TYPE_ANNOUNCE      = 4;
const bit<8> TYPE_ANNOUNCE_ACK  = 5;
const bit<8> TYPE_ANNOUNCE_NACK = 6;
const bit<8> TYPE_HELLO         = 7;
const bit<8> TYPE_LSA           = 8;
const bit<8> TYPE_LSA_ACK       = 9;
const bit<8> TYPE_PROBE         = 10;
const bit<8> TYPE_PROBE_REPLY   = 11;
const bit<8> TYPE_WITHDRAW      = 12;
const bit<8> TYPE_ECHO          = 13;   // liveness: reflected by the neighbour's data plane

// The types forwarded by name (IS_DATA): bit TYPE_x set for REQUEST (1),
// RESPONSE (2), ERROR (3), PROBE (10), PROBE_REPLY (11).
const bit<16> DATA_TYPES = 0x0C0E;

// Header flags (dmsc.flags).
const bit<8> FLAG_PROBE_FULL = 0x01;   // probe record stack was full; hop not recorded
const bit<8> FLAG_ECHO_REFLECTED = 0x02;   // an echo on its way back to the switch that sent it

// packet_out.flags
const bit<8> PKTOUT_ROUTE = 0x01;      // look the frame up in policy/FIB instead of egress_port

// Port roles (port_role table).
const bit<8> ROLE_POD  = 1;            // default for unknown ports: the safe choice
const bit<8> ROLE_CORE = 2;

// meta.verdict: what ingress decided (a punt is undecided with a punt_reason).
const bit<4> VERDICT_UNDECIDED = 0;
const bit<4> VERDICT_ROUTED    = 1;    // the policy or the FIB chose an egress port
const bit<4> VERDICT_DROP      = 2;    // some stage refused the frame (meta.drop_reason)
const bit<4> VERDICT_CONSUMED  = 3;    // ended here as intended (a reflected echo, counted in echo_rx)

// meta.path_cfg: what decides a frame's path. ingress_config sets bit 0 for a
// core-facing port and bit 1 while the SCSC policy stage is on; the parser sets
// bit 2 for a frame the common path may take that carries probe records and bit
// 3 for a frame it may not take (parser.p4). The common path is PATH_CORE, or
// PATH_CORE | PATH_RECORDS.
const bit<4> PATH_CORE       = 1;
const bit<4> PATH_POLICY     = 2;
const bit<4> PATH_RECORDS    = 4;
const bit<4> PATH_NOT_COMMON = 8;

// Drop reasons: index into the drop_reasons counter.
const bit<32> DROP_NOT_DMSC          = 0;   // EtherType is not 0x88B5
const bit<32> DROP_TRUNCATED         = 1;   // parser ran out of bytes
const bit<32> DROP_BAD_VERSION       = 2;
const bit<32> DROP_BAD_LENGTH        = 3;   // tlv_len / rec_count larger than the frame
const bit<32> DROP_TOO_MANY_RECORDS  = 4;   // rec_count > MAX_PROBE_RECORDS
const bit<32> DROP_BAD_TYPE          = 5;   // unknown message type
const bit<32> DROP_CTRL_FROM_POD     = 6;   // hello/LSA/LSA-ack on a pod-facing port
const bit<32> DROP_ANNOUNCE_FROM_CORE = 7;  // announcement/withdrawal on a core-facing port
const bit<32> DROP_UNEXPECTED_TYPE   = 8;   // controller-only type arriving on a port
const bit<32> DROP_HOP_LIMIT         = 9;
const bit<32> DROP_POLICY            = 10;  // SCSC policy says drop
const bit<32> DROP_FIB               = 11;  // FIB entry says drop (blackhole)
const bit<32> DROP_PARSER_OTHER      = 12;  // any other parser error
const bit<32> DROP_SRC_NOT_HELD      = 13;  // pod port, source name not one the port holds
const bit<32> DROP_ANNOUNCE_POLICED  = 14;  // pod port over its announcement meter (CoPP)
const bit<32> DROP_PUNT_POLICED      = 15;  // pod port over its meter for other punts (CoPP)
const bit<32> DROP_ECHO_FROM_POD     = 16;  // echo (either way) on a pod-facing port

#define N_DROP_REASONS 17

// v1model meter colours (execute_meter's result).
const bit<2> METER_RED = 2;

// Punt reasons: packet_in.reason and index into the punt_reasons counter.
const bit<8> PUNT_ANNOUNCE  = 1;   // type 1 signaling from a pod
const bit<8> PUNT_CONTROL   = 2;   // hello, LSA, LSA-ack from a neighbour
const bit<8> PUNT_LOCAL     = 3;   // addressed to this switch (FIB punt entry)
const bit<8> PUNT_NO_ROUTE  = 4;   // FIB miss: the agent answers with an ERROR
#define N_PUNT_REASONS 8

#endif
