-- dmsc.lua: Wireshark/tshark dissector for the DMSC testbed's wire format.
--
--   Ethernet (EtherType 0x88B5) | header (44) | probe records (28 each) | TLVs
--
-- docs/wire-format.md is the specification, traffic/wire/codec.py the reference
-- implementation, controller/proto/routing.proto the hello/LSA/LSA-ack bodies
-- (decoded here by hand). docs/wireshark.md says how to install and use it;
-- tests/unit/test_dissector.py runs it in tshark on frames built by the
-- project's own code.
--
-- Rules this file keeps: every read is preceded by a length check, malformed
-- input becomes expert info (group MALFORMED, severity ERROR), never a Lua
-- error; the whole dissection also runs under pcall as a last line of defence.
-- Written for Lua 5.2 (Wireshark <= 4.2) and 5.4 (Wireshark >= 4.4): no bit
-- library, no integer-only operators, numbers formatted with %d.

local ETHERTYPE_DMSC = 0x88B5
local HDR_LEN = 44
local REC_LEN = 28
local MAX_RECORDS = 12
local DMSC_VERSION = 1
local CPU_PORT = 255
local FLAG_PROBE_FULL = 0x01
local FLAG_ECHO_REFLECTED = 0x02
local TLV_HDR = 3

-- message types (traffic/wire/defs.py, generated from p4src/include/define.p4)
local TYPE_NAMES = {
    [1] = "request", [2] = "response", [3] = "error", [4] = "announce",
    [5] = "announce_ack", [6] = "announce_nack", [7] = "hello", [8] = "lsa",
    [9] = "lsa_ack", [10] = "probe", [11] = "probe_reply", [12] = "withdraw",
    [13] = "echo",
}
local TYPE_LSA_ACK = 9

-- TLV types and status codes (traffic/wire/codec.py)
local TLV_NAMES = {
    [1] = "dst_name", [2] = "src_name", [3] = "method", [4] = "body",
    [5] = "status", [6] = "prefix", [7] = "signature", [8] = "key_id",
    [9] = "timestamp", [10] = "nonce", [11] = "hello", [12] = "lsa",
    [13] = "auth", [14] = "probe_records",
}
local STATUS_NAMES = {
    [0] = "ok", [1] = "no_route", [2] = "unknown_name", [3] = "unknown_method",
    [4] = "bad_request", [5] = "app_error", [6] = "refused",
}

-- Loaded twice (an installed copy plus -X lua_script:)? The first one wins:
-- a second protocol "dmsc" cannot be created, and this copy registers nothing.
local created, dmsc = pcall(Proto, "dmsc", "DMSC (Distributed Micro Service Communication)")
if not created then
    local why = tostring(dmsc)
    if why:find("two protocols", 1, true) then          -- "... with the same name/description"
        return
    end
    error(why, 0)
end

local F = {
    -- header
    version = ProtoField.uint8("dmsc.version", "Version", base.DEC),
    type = ProtoField.uint8("dmsc.type", "Type", base.DEC, TYPE_NAMES),
    flags = ProtoField.uint8("dmsc.flags", "Flags", base.HEX),
    probe_full = ProtoField.bool("dmsc.flags.probe_full", "PROBE_FULL", 8,
        {"the probe record stack was full at some hop", "not set"}, FLAG_PROBE_FULL),
    echo_reflected = ProtoField.bool("dmsc.flags.echo_reflected", "ECHO_REFLECTED", 8,
        {"an echo on its way back, reflected by the neighbour's switch", "not set"},
        FLAG_ECHO_REFLECTED),
    hop_limit = ProtoField.uint8("dmsc.hop_limit", "Hop limit", base.DEC),
    msg_id = ProtoField.uint32("dmsc.msg_id", "Message id", base.DEC_HEX),
    dst_key = ProtoField.string("dmsc.dst_key", "Destination key"),
    src_key = ProtoField.string("dmsc.src_key", "Source key"),
    rec_count = ProtoField.uint8("dmsc.rec_count", "Probe record count", base.DEC),
    reserved = ProtoField.uint8("dmsc.reserved", "Reserved", base.HEX),
    tlv_len = ProtoField.uint16("dmsc.tlv_len", "TLV bytes", base.DEC),
    -- probe records (in the frame, or echoed in a probe_records TLV)
    rec_switch_id = ProtoField.uint32("dmsc.record.switch_id", "Switch id", base.DEC),
    rec_ingress_port = ProtoField.uint16("dmsc.record.ingress_port", "Ingress port", base.DEC),
    rec_egress_port = ProtoField.uint16("dmsc.record.egress_port", "Egress port", base.DEC),
    rec_ingress_ts = ProtoField.uint64("dmsc.record.ingress_ts", "Ingress timestamp (us)", base.DEC),
    rec_egress_ts = ProtoField.uint64("dmsc.record.egress_ts", "Egress timestamp (us)", base.DEC),
    rec_enq_qdepth = ProtoField.uint32("dmsc.record.enq_qdepth", "Queue depth at enqueue (packets)", base.DEC),
    rec_deq_timedelta = ProtoField.uint32("dmsc.record.deq_timedelta", "Time in queue (us)", base.DEC),
    rec_hop_time = ProtoField.int64("dmsc.record.hop_time", "Per-hop time (us, egress_ts - ingress_ts)", base.DEC),
    rec_echoed = ProtoField.bool("dmsc.record.echoed", "Echoed in a probe_records TLV", base.NONE),
    -- TLVs
    tlv_type = ProtoField.uint8("dmsc.tlv.type", "TLV type", base.DEC, TLV_NAMES),
    tlv_length = ProtoField.uint16("dmsc.tlv.length", "TLV length", base.DEC),
    tlv_value = ProtoField.bytes("dmsc.tlv.value", "Value"),
    dst_name = ProtoField.string("dmsc.dst_name", "Destination name"),
    src_name = ProtoField.string("dmsc.src_name", "Source name"),
    method = ProtoField.string("dmsc.method", "Method"),
    body = ProtoField.string("dmsc.body", "Body (JSON)"),
    status = ProtoField.uint16("dmsc.status", "Status", base.DEC, STATUS_NAMES),
    status_text = ProtoField.string("dmsc.status_text", "Status text"),
    prefix = ProtoField.string("dmsc.prefix", "Prefix"),
    signature = ProtoField.bytes("dmsc.signature", "Signature"),
    key_id = ProtoField.string("dmsc.key_id", "Key id"),
    timestamp = ProtoField.absolute_time("dmsc.timestamp", "Timestamp", base.UTC),
    timestamp_ns = ProtoField.uint64("dmsc.timestamp_ns", "Timestamp (ns since the epoch)", base.DEC),
    nonce = ProtoField.bytes("dmsc.nonce", "Nonce"),
    auth = ProtoField.bytes("dmsc.auth", "Auth (HMAC-SHA256)"),
    -- hello body (routing.proto: Hello)
    hello_router = ProtoField.string("dmsc.hello.router", "Router"),
    hello_router_id = ProtoField.uint32("dmsc.hello.router_id", "Router id", base.DEC),
    hello_port = ProtoField.uint32("dmsc.hello.port", "Port", base.DEC),
    hello_hello_ms = ProtoField.uint32("dmsc.hello.hello_ms", "Hello interval (ms)", base.DEC),
    hello_dead_ms = ProtoField.uint32("dmsc.hello.dead_ms", "Dead interval (ms)", base.DEC),
    hello_heard = ProtoField.string("dmsc.hello.heard", "Heard"),
    -- LSA body (Lsa, Adjacency, PrefixEntry)
    lsa_origin = ProtoField.string("dmsc.lsa.origin", "Origin"),
    lsa_origin_id = ProtoField.uint32("dmsc.lsa.origin_id", "Origin id", base.DEC),
    lsa_fragment = ProtoField.uint32("dmsc.lsa.fragment", "Fragment", base.DEC),
    lsa_seq = ProtoField.uint64("dmsc.lsa.seq", "Sequence number", base.DEC),
    lsa_lifetime_ms = ProtoField.uint32("dmsc.lsa.lifetime_ms", "Remaining lifetime (ms, 0 = purge)", base.DEC),
    lsa_kind = ProtoField.string("dmsc.lsa.kind", "Kind"),
    lsa_overload = ProtoField.bool("dmsc.lsa.overload", "Overload (no transit)", base.NONE),
    adj_neighbor = ProtoField.string("dmsc.lsa.adj.neighbor", "Neighbor"),
    adj_cost = ProtoField.uint32("dmsc.lsa.adj.cost", "Cost", base.DEC),
    adj_port = ProtoField.uint32("dmsc.lsa.adj.port", "Port", base.DEC),
    pfx_prefix = ProtoField.string("dmsc.lsa.prefix", "Prefix"),
    pfx_port = ProtoField.uint32("dmsc.lsa.prefix_port", "Port", base.DEC),
    -- LSA-ack body (LsaAck, LsaId)
    ack_summary = ProtoField.bool("dmsc.lsa_ack.summary", "Summary", base.NONE),
    id_origin = ProtoField.string("dmsc.lsa_ack.origin", "Origin"),
    id_fragment = ProtoField.uint32("dmsc.lsa_ack.fragment", "Fragment", base.DEC),
    id_seq = ProtoField.uint64("dmsc.lsa_ack.seq", "Sequence number", base.DEC),
    pb_unknown = ProtoField.bytes("dmsc.pb.unknown", "Unknown protobuf field"),
    undecoded = ProtoField.bytes("dmsc.undecoded", "Undecoded bytes"),
    padding = ProtoField.bytes("dmsc.padding", "Padding after the TLVs (ignored)"),
}
local field_list = {}
for _, f in pairs(F) do
    field_list[#field_list + 1] = f
end
dmsc.fields = field_list

local E = {
    malformed = ProtoExpert.new("dmsc.malformed", "Malformed DMSC frame",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_protobuf = ProtoExpert.new("dmsc.bad_protobuf", "Malformed protobuf body",
        expert.group.MALFORMED, expert.severity.ERROR),
    protocol = ProtoExpert.new("dmsc.protocol", "DMSC protocol violation",
        expert.group.PROTOCOL, expert.severity.WARN),
    bug = ProtoExpert.new("dmsc.dissector_error", "DMSC dissector error",
        expert.group.MALFORMED, expert.severity.ERROR),
}
dmsc.experts = {E.malformed, E.bad_protobuf, E.protocol, E.bug}

-- -- small helpers --------------------------------------------------------

-- a MALFORMED/ERROR expert item, and "[Malformed]" in the Info column
local function malformed(ctx, item, text)
    item:add_proto_expert_info(E.malformed, text)
    ctx.malformed = true
end

local function fmt_int(n)
    return string.format("%d", n)
end

-- 2^k as exact integers (Lua 5.4 keeps them integers, 5.2 exact doubles)
local POW2 = {[0] = 1}
for k = 1, 63 do
    POW2[k] = POW2[k - 1] * 2
end

-- XOR of two 32-bit numbers, with arithmetic only (no bit library needed)
local XOR4 = {}
for x = 0, 15 do
    for y = 0, 15 do
        local r, a, b = 0, x, y
        for k = 0, 3 do
            if (a % 2) ~= (b % 2) then
                r = r + POW2[k]
            end
            a, b = math.floor(a / 2), math.floor(b / 2)
        end
        XOR4[x * 16 + y] = r
    end
end

local function bxor32(a, b)
    local r, p = 0, 1
    for _ = 1, 8 do
        local x, y = a % 16, b % 16
        r = r + XOR4[x * 16 + y] * p
        a, b, p = math.floor(a / 16), math.floor(b / 16), p * 16
    end
    return r
end

-- CRC-32 (IEEE 802.3, as zlib.crc32): one component of a name key
local CRC_TABLE = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if c % 2 == 1 then
            c = bxor32(math.floor(c / 2), 0xEDB88320)
        else
            c = math.floor(c / 2)
        end
    end
    CRC_TABLE[i] = c
end

local function crc32(s)
    local c = 0xFFFFFFFF
    for i = 1, #s do
        local idx = bxor32(c % 256, s:byte(i))
        c = bxor32(CRC_TABLE[idx], math.floor(c / 256))
    end
    return bxor32(c, 0xFFFFFFFF)
end

-- the 128-bit key of a name, as "xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx"
-- (traffic/wire/names.py: first 4 components, CRC-32 each, unused = 0)
local function name_key_text(raw_name)
    local groups = {}
    for comp in raw_name:gmatch("[^/]+") do
        if #groups == 4 then
            break
        end
        groups[#groups + 1] = string.format("%08x", crc32(comp))
    end
    while #groups < 4 do
        groups[#groups + 1] = "00000000"
    end
    return table.concat(groups, ":")
end

local function key_text(tvb, off)
    return string.format("%08x:%08x:%08x:%08x", tvb(off, 4):uint(), tvb(off + 4, 4):uint(),
        tvb(off + 8, 4):uint(), tvb(off + 12, 4):uint())
end

local function utf8_text(tvb, off, len)
    if len == 0 then
        return ""
    end
    return tvb(off, len):string(ENC_UTF_8)
end

-- 48-bit (or any <= 53-bit) big-endian unsigned as a Lua number, exactly
local function uint_be(tvb, off, len)
    local v = 0
    for i = 0, len - 1 do
        v = v * 256 + tvb(off + i, 1):uint()
    end
    return v
end

-- -- probe records -------------------------------------------------------

local function add_record(tree, tvb, off, label, echoed)
    local sw = tvb(off, 4):uint()
    local inp = tvb(off + 4, 2):uint()
    local outp = tvb(off + 6, 2):uint()
    local its = uint_be(tvb, off + 8, 6)
    local ets = uint_be(tvb, off + 14, 6)
    local hop = ets - its
    local function port(p)
        return p == CPU_PORT and "CPU" or fmt_int(p)
    end
    local st = tree:add(tvb(off, REC_LEN), string.format("%s: switch %d, port %s -> %s, hop time %d us",
        label, sw, port(inp), port(outp), hop))
    st:add(F.rec_switch_id, tvb(off, 4))
    local it = st:add(F.rec_ingress_port, tvb(off + 4, 2))
    if inp == CPU_PORT then
        it:append_text(" (CPU: injected by the agent)")
    end
    it = st:add(F.rec_egress_port, tvb(off + 6, 2))
    if outp == CPU_PORT then
        it:append_text(" (CPU: punted to the agent)")
    end
    st:add(F.rec_ingress_ts, tvb(off + 8, 6), UInt64(its % 4294967296, math.floor(its / 4294967296)))
    st:add(F.rec_egress_ts, tvb(off + 14, 6), UInt64(ets % 4294967296, math.floor(ets / 4294967296)))
    st:add(F.rec_enq_qdepth, tvb(off + 20, 4))
    st:add(F.rec_deq_timedelta, tvb(off + 24, 4))
    it = st:add(F.rec_hop_time, tvb(off + 8, 12), Int64(hop))
    it:set_generated()
    if echoed then
        it = st:add(F.rec_echoed, tvb(off, REC_LEN), true)
        it:set_generated()
    end
    return sw, hop
end

-- -- protobuf (routing.proto), decoded by hand ---------------------------

-- A varint at off, ending before stop: lo, hi (32-bit halves), next offset;
-- or nil, error text.
local function read_varint(tvb, off, stop)
    local lo, hi = 0, 0
    for i = 0, 9 do
        local p = off + i
        if p >= stop then
            return nil, "varint runs past the end"
        end
        local b = tvb(p, 1):uint()
        local v = b % 128
        local s = 7 * i
        if s < 28 then
            lo = lo + v * POW2[s]
        elseif s == 28 then
            lo = lo + (v % 16) * POW2[28]
            hi = hi + math.floor(v / 16)
        else
            if i == 9 and v > 1 then
                return nil, "varint overflows 64 bits"
            end
            hi = hi + v * POW2[s - 32]
        end
        if b < 128 then
            return lo, hi, p + 1
        end
    end
    return nil, "varint is longer than 10 bytes"
end

-- Split a message into fields; stops at the first error and returns the
-- fields read so far, the error text and its offset.
local function pb_parse(tvb, off, len)
    local fields = {}
    local stop = off + len
    local p = off
    while p < stop do
        local tlo, thi, np = read_varint(tvb, p, stop)
        if not tlo then
            return fields, "field key: " .. thi, p
        end
        local wt = tlo % 8
        local num = math.floor(tlo / 8) + thi * POW2[29]
        if num == 0 or num > 536870911 then
            return fields, "invalid field number " .. fmt_int(num), p
        end
        local f = {num = num, wt = wt, start = p}
        if wt == 0 then
            local lo, hi, q = read_varint(tvb, np, stop)
            if not lo then
                return fields, string.format("field %d: %s", num, hi), p
            end
            f.lo, f.hi, f.voff, f.vlen, p = lo, hi, np, q - np, q
        elseif wt == 1 or wt == 5 then
            local n = (wt == 1) and 8 or 4
            if np + n > stop then
                return fields, string.format("field %d: fixed%d value runs past the end", num, n * 8), p
            end
            f.voff, f.vlen, p = np, n, np + n
        elseif wt == 2 then
            local lo, hi, q = read_varint(tvb, np, stop)
            if not lo then
                return fields, string.format("field %d: length %s", num, hi), p
            end
            if hi ~= 0 or lo > stop - q then
                return fields, string.format("field %d: length %d runs past the end (%d bytes left)",
                    num, hi * POW2[32] + lo, stop - q), p
            end
            f.voff, f.vlen, p = q, lo, q + lo
        else
            return fields, string.format("field %d: wire type %d is not valid here", num, wt), p
        end
        f.len = p - f.start
        fields[#fields + 1] = f
    end
    return fields
end

-- kinds: string, uint32, uint64, bool (wire type 0), message (wire type 2)
local PB = {
    Hello = {
        [1] = {"router", "string", F.hello_router},
        [2] = {"router_id", "uint32", F.hello_router_id},
        [3] = {"port", "uint32", F.hello_port},
        [4] = {"hello_ms", "uint32", F.hello_hello_ms},
        [5] = {"dead_ms", "uint32", F.hello_dead_ms},
        [6] = {"heard", "string", F.hello_heard},
    },
    Adjacency = {
        [1] = {"neighbor", "string", F.adj_neighbor},
        [2] = {"cost", "uint32", F.adj_cost},
        [3] = {"port", "uint32", F.adj_port},
    },
    PrefixEntry = {
        [1] = {"prefix", "string", F.pfx_prefix},
        [2] = {"port", "uint32", F.pfx_port},
    },
    Lsa = {
        [1] = {"origin", "string", F.lsa_origin},
        [2] = {"origin_id", "uint32", F.lsa_origin_id},
        [3] = {"fragment", "uint32", F.lsa_fragment},
        [4] = {"seq", "uint64", F.lsa_seq},
        [5] = {"lifetime_ms", "uint32", F.lsa_lifetime_ms},
        [6] = {"kind", "string", F.lsa_kind},
        [7] = {"adjacencies", "message", nil, "Adjacency"},
        [8] = {"prefixes", "message", nil, "PrefixEntry"},
        [9] = {"overload", "bool", F.lsa_overload},
    },
    LsaId = {
        [1] = {"origin", "string", F.id_origin},
        [2] = {"fragment", "uint32", F.id_fragment},
        [3] = {"seq", "uint64", F.id_seq},
    },
    LsaAck = {
        [1] = {"ids", "message", nil, "LsaId"},
        [2] = {"summary", "bool", F.ack_summary},
        [3] = {"first", "message", nil, "LsaId"},
        [4] = {"last", "message", nil, "LsaId"},
    },
}

-- labels of sub-messages, from their decoded values (proto3 defaults if absent)
local function v(vals, name, default)
    local x = vals[name]
    if x == nil then
        return default
    end
    return tostring(x)
end

local LABEL = {
    Adjacency = function(name, vals)
        return string.format("Adjacency: %s, cost %s, port %s", v(vals, "neighbor", ""),
            v(vals, "cost", "0"), v(vals, "port", "0"))
    end,
    PrefixEntry = function(name, vals)
        return string.format("Prefix: %s, port %s", v(vals, "prefix", ""), v(vals, "port", "0"))
    end,
    LsaId = function(name, vals)
        return string.format("%s: %s fragment %s seq %s", name, v(vals, "origin", '""'),
            v(vals, "fragment", "0"), v(vals, "seq", "0"))
    end,
}

local function wire_type_of(kind)
    if kind == "string" or kind == "message" then
        return 2
    end
    return 0
end

-- Render one message into tree; returns its values (first of each field;
-- lists of sub-message values under name .. "[]") and whether it was bad.
local function pb_render(tvb, off, len, tree, schema_name)
    local schema = PB[schema_name]
    local vals = {}
    local bad = false
    local fields, err, erroff = pb_parse(tvb, off, len)
    for _, f in ipairs(fields) do
        local spec = schema[f.num]
        if spec == nil then
            tree:add(F.pb_unknown, tvb(f.start, f.len)):append_text(
                string.format(" (field %d, wire type %d: not in routing.proto, skipped)", f.num, f.wt))
        else
            local name, kind, field, sub = spec[1], spec[2], spec[3], spec[4]
            local vr = tvb(f.voff, f.vlen)
            if f.wt ~= wire_type_of(kind) then
                local it = tree:add(tvb(f.start, f.len), string.format("%s.%s (field %d): wire type %d",
                    schema_name, name, f.num, f.wt))
                it:add_proto_expert_info(E.bad_protobuf, string.format(
                    "%s.%s (field %d) has wire type %d, routing.proto says %d",
                    schema_name, name, f.num, f.wt, wire_type_of(kind)))
                bad = true
            elseif kind == "string" then
                local s = utf8_text(tvb, f.voff, f.vlen)
                tree:add(field, vr, s)
                if vals[name] == nil then
                    vals[name] = s
                end
                local list = vals[name .. "[]"] or {}
                list[#list + 1] = s
                vals[name .. "[]"] = list
            elseif kind == "uint32" then
                tree:add(field, vr, f.lo)              -- proto3 uint32 keeps the low 32 bits
                vals[name] = f.lo
            elseif kind == "uint64" then
                local u = UInt64(f.lo, f.hi)
                tree:add(field, vr, u)
                vals[name] = u
            elseif kind == "bool" then
                local b = (f.lo ~= 0 or f.hi ~= 0)
                tree:add(field, vr, b)
                vals[name] = b
            else -- message
                local st = tree:add(tvb(f.start, f.len), name)
                local sv, sbad = pb_render(tvb, f.voff, f.vlen, st, sub)
                st:set_text(LABEL[sub](name, sv))
                local list = vals[name .. "[]"] or {}
                list[#list + 1] = sv
                vals[name .. "[]"] = list
                bad = bad or sbad
            end
        end
    end
    if err then
        local it = tree:add(tvb(erroff, off + len - erroff),
            string.format("%s body is malformed: %s", schema_name, err))
        it:add_proto_expert_info(E.bad_protobuf, string.format("%s body: %s", schema_name, err))
        bad = true
    end
    return vals, bad
end

local function count(vals, name)
    local list = vals[name .. "[]"]
    return list and #list or 0
end

local function body_summary(schema_name, vals)
    if schema_name == "Hello" then
        local heard = vals["heard[]"] and table.concat(vals["heard[]"], ",") or "-"
        return string.format("router %s (id %s), port %s, hello %s ms, dead %s ms, heard %s",
            v(vals, "router", '""'), v(vals, "router_id", "0"), v(vals, "port", "0"),
            v(vals, "hello_ms", "0"), v(vals, "dead_ms", "0"), heard),
            "router=" .. v(vals, "router", '""')
    elseif schema_name == "Lsa" then
        return string.format(
            "origin %s (id %s, %s), fragment %s, seq %s, lifetime %s ms, adjacencies: %d, prefixes: %d",
            v(vals, "origin", '""'), v(vals, "origin_id", "0"), v(vals, "kind", '""'),
            v(vals, "fragment", "0"), v(vals, "seq", "0"), v(vals, "lifetime_ms", "0"),
            count(vals, "adjacencies"), count(vals, "prefixes")),
            string.format("origin=%s fragment=%s seq=%s", v(vals, "origin", '""'),
                v(vals, "fragment", "0"), v(vals, "seq", "0"))
    else
        local s = string.format("ids: %d%s", count(vals, "ids"), vals.summary and ", summary" or "")
        return s, "acks=" .. fmt_int(count(vals, "ids")) .. (vals.summary and " summary" or "")
    end
end

-- -- TLVs ----------------------------------------------------------------

local TEXT_FIELDS = {[1] = F.dst_name, [2] = F.src_name, [3] = F.method, [4] = F.body,
                     [6] = F.prefix, [8] = F.key_id}
local BYTES_FIELDS = {[7] = F.signature, [10] = F.nonce, [13] = F.auth}

-- Decode one TLV value (bounds already checked: off + len is in the frame).
local function dissect_tlv_value(t, tvb, off, len, st, ctx)
    local vr = tvb(off, len)
    local name = TLV_NAMES[t]
    if TEXT_FIELDS[t] then
        local s = utf8_text(tvb, off, len)
        st:add(TEXT_FIELDS[t], vr, s)
        st:append_text(": " .. s)
        if ctx[name] == nil then
            ctx[name] = s
            if t == 1 or t == 2 then
                ctx[name .. "_raw"] = (len > 0) and vr:raw() or ""
            end
        end
    elseif BYTES_FIELDS[t] then
        st:add(BYTES_FIELDS[t], vr)
    elseif t == 5 then -- status
        if len < 2 then
            malformed(ctx, st, string.format(
                "status TLV of %d bytes: needs at least the 2-byte code", len))
            return
        end
        local code = tvb(off, 2):uint()
        local text = utf8_text(tvb, off + 2, len - 2)
        st:add(F.status, tvb(off, 2))
        st:add(F.status_text, tvb(off + 2, len - 2), text)
        st:append_text(string.format(": %s (%d) %s", STATUS_NAMES[code] or "unknown", code, text))
        if ctx.status == nil then
            ctx.status = code
        end
    elseif t == 9 then -- timestamp
        if len ~= 8 then
            malformed(ctx, st, string.format(
                "timestamp TLV of %d bytes: it is a u64 (8 bytes)", len))
            return
        end
        local ns = vr:uint64()
        local secs = (ns / 1000000000):tonumber()
        local nsecs = (ns % 1000000000):tonumber()
        st:add(F.timestamp, vr, NSTime.new(secs, nsecs))
        st:add(F.timestamp_ns, vr)
        st:append_text(": " .. os.date("!%Y-%m-%d %H:%M:%S", secs) .. string.format(".%09d UTC", nsecs))
    elseif t == 11 or t == 12 then -- hello / lsa / lsa_ack bodies
        local schema = (t == 11) and "Hello" or ((ctx.type == TYPE_LSA_ACK) and "LsaAck" or "Lsa")
        local vals, bad = pb_render(tvb, off, len, st, schema)
        local summary, info = body_summary(schema, vals)
        st:append_text(string.format(" (%s): %s", schema, summary))
        if ctx.info_extra == nil and not bad then
            ctx.info_extra = info
        end
        if bad then
            ctx.bad_body = true
        end
    elseif t == 14 then -- probe_records
        if len % REC_LEN ~= 0 then
            malformed(ctx, st, string.format(
                "probe_records TLV of %d bytes is not a multiple of %d", len, REC_LEN))
        end
        local n = math.floor(len / REC_LEN)
        local hops = {}
        for i = 0, n - 1 do
            local sw, hop = add_record(st, tvb, off + i * REC_LEN,
                string.format("Echoed record %d", i + 1), true)
            hops[#hops + 1] = string.format("%d:%dus", sw, hop)
        end
        st:append_text(string.format(": %d records", n))
        if n > 0 then
            ctx.echoed_hops = table.concat(hops, " ")
        end
    else
        st:add(F.tlv_value, vr)
        st:append_text(" (unknown TLV type: receivers skip it)")
    end
end

-- -- the frame -------------------------------------------------------------

local function dissect(tvb, pinfo, root)
    local avail = tvb:len()
    local ctx = {}

    -- fixed header, field by field as far as the bytes go
    local h = {}
    if avail >= 1 then
        h.version = tvb(0, 1):uint()
        local it = root:add(F.version, tvb(0, 1))
        if h.version ~= DMSC_VERSION then
            it:add_proto_expert_info(E.protocol, string.format(
                "version %d is not %d: a switch drops the frame (bad_version)", h.version, DMSC_VERSION))
        end
    end
    if avail >= 2 then
        h.type = tvb(1, 1):uint()
        ctx.type = h.type
        local it = root:add(F.type, tvb(1, 1))
        if TYPE_NAMES[h.type] == nil then
            it:add_proto_expert_info(E.protocol, string.format(
                "unknown message type %d: a switch drops the frame (bad_type)", h.type))
        end
    end
    if avail >= 3 then
        local it = root:add(F.flags, tvb(2, 1))
        it:add(F.probe_full, tvb(2, 1))
        it:add(F.echo_reflected, tvb(2, 1))
    end
    if avail >= 4 then
        h.hop_limit = tvb(3, 1):uint()
        root:add(F.hop_limit, tvb(3, 1))
    end
    if avail >= 8 then
        h.msg_id = tvb(4, 4):uint()
        root:add(F.msg_id, tvb(4, 4))
    end
    local dst_key_item, src_key_item
    if avail >= 24 then
        h.dst_key = key_text(tvb, 8)
        dst_key_item = root:add(F.dst_key, tvb(8, 16), h.dst_key)
    end
    if avail >= 40 then
        h.src_key = key_text(tvb, 24)
        src_key_item = root:add(F.src_key, tvb(24, 16), h.src_key)
    end
    if avail >= 41 then
        h.rec_count = tvb(40, 1):uint()
        local it = root:add(F.rec_count, tvb(40, 1))
        if h.rec_count > MAX_RECORDS then
            it:add_proto_expert_info(E.protocol, string.format(
                "%d probe records: at most %d (a switch drops it: too_many_records)",
                h.rec_count, MAX_RECORDS))
        end
    end
    if avail >= 42 then
        root:add(F.reserved, tvb(41, 1))
    end
    if avail >= 44 then
        h.tlv_len = tvb(42, 2):uint()
        root:add(F.tlv_len, tvb(42, 2))
    end
    if avail < HDR_LEN then
        malformed(ctx, root, string.format("truncated header: %d of %d bytes", avail, HDR_LEN))
        return avail, h, ctx
    end

    -- probe records
    local rec_end = HDR_LEN + h.rec_count * REC_LEN
    if rec_end > avail then
        malformed(ctx, root, string.format(
            "rec_count %d claims %d bytes of records, the frame has %d after the header",
            h.rec_count, h.rec_count * REC_LEN, avail - HDR_LEN))
        -- the rest is shown raw: TLV bytes dressed up as records would mislead
        if avail > HDR_LEN then
            root:add(F.undecoded, tvb(HDR_LEN, avail - HDR_LEN))
        end
        return avail, h, ctx
    end
    if h.rec_count > 0 then
        local rt = root:add(tvb(HDR_LEN, h.rec_count * REC_LEN),
            string.format("Probe records (%d, newest first)", h.rec_count))
        local hops = {}
        for i = 0, h.rec_count - 1 do
            local sw, hop = add_record(rt, tvb, HDR_LEN + i * REC_LEN, string.format("Record %d", i + 1), false)
            hops[#hops + 1] = string.format("%d:%dus", sw, hop)
        end
        ctx.hops = table.concat(hops, " ")
    end

    -- TLVs
    local tlv_end = rec_end + h.tlv_len
    local stop = tlv_end
    if tlv_end > avail then
        stop = avail
        malformed(ctx, root, string.format("tlv_len %d runs past the end of the frame (%d bytes after the records)",
            h.tlv_len, avail - rec_end))
    end
    local off = rec_end
    if h.tlv_len > 0 then
        local tt = root:add(tvb(rec_end, stop - rec_end), string.format("TLVs (%d bytes)", h.tlv_len))
        while off < stop do
            if off + TLV_HDR > stop then
                local it = tt:add(tvb(off, stop - off), "TLV header cut short")
                malformed(ctx, it, string.format("%d bytes left: too few for a TLV header (3)", stop - off))
                off = stop
                break
            end
            local t = tvb(off, 1):uint()
            local len = tvb(off + 1, 2):uint()
            local vend = off + TLV_HDR + len
            local name = TLV_NAMES[t] or "unknown"
            local st = tt:add(tvb(off, math.min(vend, stop) - off),
                string.format("TLV %s (%d), %d bytes", name, t, len))
            st:add(F.tlv_type, tvb(off, 1))
            st:add(F.tlv_length, tvb(off + 1, 2))
            if vend > stop then
                malformed(ctx, st, string.format("TLV %s: length %d runs past the end of the %s (%d bytes left)",
                    name, len, (stop == tlv_end) and "TLVs (tlv_len)" or "frame", stop - off - TLV_HDR))
                off = stop
                break
            end
            dissect_tlv_value(t, tvb, off + TLV_HDR, len, st, ctx)
            off = vend
        end
    end

    -- do the keys match the names?
    if ctx.dst_name_raw and dst_key_item then
        local want = name_key_text(ctx.dst_name_raw)
        if want ~= h.dst_key then
            dst_key_item:add_proto_expert_info(E.protocol, string.format(
                "dst_key is not the key of dst_name %s (%s)", ctx.dst_name, want))
        else
            dst_key_item:append_text(" (key of " .. ctx.dst_name .. ")")
        end
    end
    if ctx.src_name_raw and src_key_item then
        local want = name_key_text(ctx.src_name_raw)
        if want ~= h.src_key then
            src_key_item:add_proto_expert_info(E.protocol, string.format(
                "src_key is not the key of src_name %s (%s)", ctx.src_name, want))
        else
            src_key_item:append_text(" (key of " .. ctx.src_name .. ")")
        end
    end
    if tlv_end < avail then
        root:add(F.padding, tvb(tlv_end, avail - tlv_end))
    end
    return avail, h, ctx
end

local function set_info(pinfo, h, ctx)
    local parts = {}
    if h.type ~= nil then
        parts[#parts + 1] = TYPE_NAMES[h.type] or ("type " .. fmt_int(h.type))
    else
        parts[#parts + 1] = "truncated"
    end
    if ctx.dst_name then
        parts[#parts + 1] = "dst=" .. ctx.dst_name
    elseif h.dst_key then
        parts[#parts + 1] = "dst_key=" .. h.dst_key
    end
    if ctx.src_name then
        parts[#parts + 1] = "src=" .. ctx.src_name
    elseif h.src_key then
        parts[#parts + 1] = "src_key=" .. h.src_key
    end
    if h.msg_id ~= nil then
        parts[#parts + 1] = "msg_id=" .. fmt_int(h.msg_id)
    end
    if h.hop_limit ~= nil then
        parts[#parts + 1] = "hop_limit=" .. fmt_int(h.hop_limit)
    end
    if ctx.method then
        parts[#parts + 1] = "method=" .. ctx.method
    end
    if ctx.status then
        parts[#parts + 1] = "status=" .. (STATUS_NAMES[ctx.status] or fmt_int(ctx.status))
    end
    if ctx.prefix then
        parts[#parts + 1] = "prefix=" .. ctx.prefix
    end
    if ctx.info_extra then
        parts[#parts + 1] = ctx.info_extra
    end
    if ctx.hops then
        parts[#parts + 1] = "hops=" .. ctx.hops
    end
    if ctx.echoed_hops then
        parts[#parts + 1] = "echoed=" .. ctx.echoed_hops
    end
    if ctx.malformed or ctx.bad_body then
        parts[#parts + 1] = "[Malformed]"
    end
    pinfo.cols.info:set(table.concat(parts, " "))
end

function dmsc.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol:set("DMSC")
    local root = tree:add(dmsc, tvb())
    local ok, consumed, h, ctx = pcall(dissect, tvb, pinfo, root)
    if not ok then
        -- a bug here, not in the frame: say so in the tree instead of a Lua error
        root:add_proto_expert_info(E.bug, "dissector error: " .. tostring(consumed))
        pinfo.cols.info:set("DMSC (dissector error)")
        return tvb:len()
    end
    root:set_len(consumed)
    local ok2, err2 = pcall(set_info, pinfo, h, ctx)
    if not ok2 then
        root:add_proto_expert_info(E.bug, "dissector error: " .. tostring(err2))
    end
    if h.type ~= nil then
        root:append_text(", " .. (TYPE_NAMES[h.type] or ("type " .. fmt_int(h.type))))
    end
    if ctx.dst_name then
        root:append_text(", " .. (ctx.src_name or "?") .. " -> " .. ctx.dst_name)
    end
    return consumed
end

DissectorTable.get("ethertype"):add(ETHERTYPE_DMSC, dmsc)
