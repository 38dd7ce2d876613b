"""The Scapy layers against the wire format and headers.p4, byte for byte."""
import re
import struct

import pytest
from scapy.layers.l2 import Ether

from tests.conftest import ROOT
from traffic.wire import codec, defs, layers, names

HEADERS_P4 = (ROOT / "p4src" / "include" / "headers.p4").read_text()
DEFINE_P4 = (ROOT / "p4src" / "include" / "define.p4").read_text()


def p4_header_fields(header: str) -> list[tuple[str, int]]:
    body = re.search(r"header\s+%s\s*\{(.*?)\}" % header, HEADERS_P4, re.S).group(1)
    out = []
    for line in body.splitlines():
        line = line.split("//")[0].strip()
        m = re.match(r"(bit<(\d+)>|name_key_t|mac_addr_t)\s+(\w+);", line)
        if m:
            width = int(m.group(2)) if m.group(2) else {"name_key_t": 128, "mac_addr_t": 48}[m.group(1)]
            out.append((m.group(3), width))
    return out


def p4_const(name: str) -> int:
    m = re.search(r"const\s+\S+\s+%s\s*=\s*(0x[0-9A-Fa-f]+|\d+);" % name, DEFINE_P4)
    if m is None:
        m = re.search(r"#define\s+%s\s+(\d+)" % name, DEFINE_P4)
    return int(m.group(1), 0)


@pytest.mark.parametrize("header, layer, skip", [
    ("dmsc_t", layers.DMSC, {"records", "tlvs"}),
    ("probe_rec_t", layers.ProbeRecord, set()),
])
def test_scapy_fields_match_headers_p4(header, layer, skip):
    def width(f):
        return f.size if hasattr(f, "size") else f.sz * 8   # BitField: bits; others: bytes
    scapy_fields = [(f.name, width(f)) for f in layer.fields_desc if f.name not in skip]
    assert scapy_fields == p4_header_fields(header)


def test_fixed_header_and_record_sizes_match_define_p4():
    assert len(bytes(layers.DMSC())) == defs.DMSC_HDR_BYTES == p4_const("DMSC_HDR_BYTES")
    assert sum(w for _, w in p4_header_fields("dmsc_t")) == 8 * defs.DMSC_HDR_BYTES
    assert len(bytes(layers.ProbeRecord())) == defs.PROBE_REC_BYTES == p4_const("PROBE_REC_BYTES")
    assert defs.MAX_PROBE_RECORDS == p4_const("MAX_PROBE_RECORDS")
    assert defs.ETHERTYPE_DMSC == p4_const("ETHERTYPE_DMSC") == 0x88B5
    assert defs.DMSC_VERSION == p4_const("DMSC_VERSION")
    assert names.NAME_COMPONENTS == p4_const("NAME_COMPONENTS")
    assert names.COMPONENT_BITS == p4_const("COMPONENT_BITS")


def test_message_types_match_define_p4():
    for value, name in defs.TYPE_NAMES.items():
        assert p4_const("TYPE_" + name.upper()) == value, name
    assert defs.FLAG_PROBE_FULL == p4_const("FLAG_PROBE_FULL")


def test_data_types_mask_names_exactly_the_types_forwarded_by_name():
    # the switch's IS_DATA tests bit TYPE_x of DATA_TYPES (define.p4)
    forwarded = {defs.TYPE_REQUEST, defs.TYPE_RESPONSE, defs.TYPE_ERROR, defs.TYPE_PROBE,
                 defs.TYPE_PROBE_REPLY}
    assert p4_const("DATA_TYPES") == defs.DATA_TYPES
    assert {t for t in range(16) if defs.DATA_TYPES >> t & 1} == forwarded


def test_request_builds_byte_exact():
    f = layers.request("/B/4", "/A/1", "echo", {"x": 1}, msg_id=7,
                     eth_src="02:00:01:00:00:01", eth_dst="ff:ff:ff:ff:ff:ff")
    dst, src = names.name_key("/B/4"), names.name_key("/A/1")
    tlvs = b"".join(struct.pack("!BH", t, len(v)) + v for t, v in [
        (codec.TLV_DST_NAME, b"/B/4"), (codec.TLV_SRC_NAME, b"/A/1"),
        (codec.TLV_METHOD, b"echo"), (codec.TLV_BODY, b'{"x":1}')])
    expected = (bytes.fromhex("ffffffffffff" "020001000001" "88b5")
                + struct.pack("!BBBBI", 1, defs.TYPE_REQUEST, 0, 64, 7)   # default hop limit (docs/wire-format.md)
                + dst.to_bytes(16, "big") + src.to_bytes(16, "big")
                + struct.pack("!BBH", 0, 0, len(tlvs)) + tlvs)
    assert bytes(f) == expected


def test_round_trip_with_records_and_padding():
    recs = [layers.ProbeRecord(switch_id=i, ingress_port=1, egress_port=2,
                             ingress_ts=10 * i, egress_ts=10 * i + 3,
                             enq_qdepth=i, deq_timedelta=5) for i in range(3)]
    f = layers.probe("/A/1", names.switch_name("sg1"), msg_id=99, records=recs)
    raw = bytes(f) + b"\x00" * 20                       # Ethernet padding
    p = layers.parse(raw)
    assert p.rec_count == 3 and [r.switch_id for r in p.records] == [0, 1, 2]
    assert p.records[2].egress_ts == 23
    assert p.dst_name == "/A/1" and p.src_name == names.switch_name("sg1")
    assert p.msg_id == 99 and p.type == defs.TYPE_PROBE
    assert bytes(Ether(bytes(f))) == bytes(f)


def test_probe_reply_echoes_forward_records_in_a_tlv():
    recs = [layers.ProbeRecord(switch_id=7, ingress_ts=1, egress_ts=2)]
    p = layers.parse(bytes(layers.probe("/A/1", "/S", msg_id=5, records=recs)))
    r = layers.parse(bytes(layers.probe_reply(p, "/A/1")))
    assert r.type == defs.TYPE_PROBE_REPLY and r.rec_count == 0 and r.dst_name == "/S"
    back = layers.records_from_tlv(r.tlv(codec.TLV_PROBE_RECORDS))
    assert [x.switch_id for x in back] == [7]
    with pytest.raises(ValueError, match="multiple of 28"):
        layers.records_from_tlv(b"\x00" * 5)


def test_status_tlv_round_trip():
    req = layers.parse(bytes(layers.request("/B/4", "/A/1", "nope", {}, msg_id=3)))
    err = layers.parse(bytes(layers.error(req, "/B/4", codec.STATUS_UNKNOWN_METHOD, "no method")))
    assert err.status() == (codec.STATUS_UNKNOWN_METHOD, "no method")
    assert err.dst_key == names.name_key("/A/1") and err.msg_id == 3


@pytest.mark.parametrize("raw, why", [
    (bytes(Ether(type=0x0800)) + b"\x45" * 20, "not a DMSC frame"),
    (bytes(layers.request("/B", "/A", "m", {}, msg_id=1))[:-3], "truncated"),
    (bytes(Ether(type=0x88B5) / layers.DMSC(version=9)), "version 9"),
])
def test_parse_refuses_bad_frames(raw, why):
    with pytest.raises(ValueError, match=why):
        layers.parse(raw)


def test_fast_encoder_is_byte_exact_with_the_scapy_layers():
    tlvs = [(codec.TLV_HELLO, b"\x0a\x03sg1"), (codec.TLV_AUTH, bytes(32))]
    fast = codec.encode(defs.TYPE_HELLO, names.switch_name(), names.switch_name("sg1"), tlvs, msg_id=9, hop_limit=1,
                       eth_src="02:00:00:00:01:02")
    slow = layers.frame(defs.TYPE_HELLO, names.switch_name(), names.switch_name("sg1"), msg_id=9, hop_limit=1,
                      eth_src="02:00:00:00:01:02",
                      tlvs=[layers.TLV(type=t, value=v) for t, v in tlvs])
    assert fast == bytes(slow)


def test_fast_decoder_reads_what_scapy_builds():
    recs = [layers.ProbeRecord(switch_id=5)]
    raw = bytes(layers.probe("/A/1", "/S", msg_id=3, records=recs, eth_src="02:00:00:00:00:07"))
    f = codec.decode(raw + b"\x00" * 8)
    assert (f.type, f.msg_id, f.rec_count, f.eth_src) == (defs.TYPE_PROBE, 3, 1, "02:00:00:00:00:07")
    assert f.dst_key == names.name_key("/A/1") and f.src_name == "/S" and f.dst_name == "/A/1"
    assert f.records == bytes(recs[0])


@pytest.mark.parametrize("raw, why", [
    (bytes(Ether(type=0x0800)) + b"\x45" * 50, "not a DMSC frame"),
    (bytes(layers.request("/B", "/A", "m", {}, msg_id=1))[:-3], "truncated"),
    (bytes(layers.request("/B", "/A", "m", {}, msg_id=1))[:20], "truncated"),
    (bytes(Ether(type=0x88B5) / layers.DMSC(version=9)), "version 9"),
    (bytes(Ether(type=0x88B5) / layers.DMSC(tlv_len=3)) + b"\x01\x00\x09", "truncated"),
])
def test_fast_decoder_refuses_bad_frames(raw, why):
    with pytest.raises(ValueError, match=why):
        codec.decode(raw)


def test_codec_answers_are_byte_for_byte_the_scapy_ones():
    """The pods and agents answer with the struct codec; Scapy defines the frames."""
    req_raw = bytes(layers.request("/B/4", "/A/1", "echo", {"k": [1, 2]}, msg_id=77,
                                   eth_src="02:00:01:00:00:01"))
    fast, slow = codec.decode(req_raw), layers.parse(req_raw)
    kw = {"eth_src": "02:00:01:00:00:04", "eth_dst": "02:00:00:00:04:01"}
    assert codec.response(fast, "/B/4", {"k": [1, 2]}, **kw) == \
        bytes(layers.response(slow, "/B/4", {"k": [1, 2]}, **kw))
    assert codec.error(fast, "/B/4", codec.STATUS_UNKNOWN_METHOD, "no method 'x'", **kw) == \
        bytes(layers.error(slow, "/B/4", codec.STATUS_UNKNOWN_METHOD, "no method 'x'", **kw))
    rec = layers.ProbeRecord(switch_id=4, ingress_port=2, egress_port=1, ingress_ts=10,
                             egress_ts=12, enq_qdepth=0, deq_timedelta=2)
    probe_raw = bytes(layers.probe("/B/4", names.switch_name("sg1"), msg_id=5, records=[rec]))
    assert codec.probe_reply(codec.decode(probe_raw), "/B/4", **kw) == \
        bytes(layers.probe_reply(layers.parse(probe_raw), "/B/4", **kw))
