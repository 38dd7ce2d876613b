"""The Wireshark dissector (traffic/wire/wireshark/dmsc.lua) in tshark.

Frames of every message type are built with the project's own code (the
Scapy layers, the struct codec, routing_pb2 bodies signed with the router's
auth_code), written to a pcap and read back by tshark with the dissector;
every field tshark prints is checked against the values put in. A second
pcap of malformed frames must give MALFORMED/ERROR expert items and never a
Lua error. Then display filters, and dmsc.pcap.show.

tshark runs with HOME in a temporary directory, so a copy of the plugin
installed in the personal plugins folder, or personal preferences, cannot
change what is tested. As root, tshark 4.0 on Debian/Ubuntu loads -X
lua_script because /usr/share/wireshark/init.lua sets
run_user_scripts_when_superuser = true (it only prints a warning); where it
does not, the fixture below skips and says why.
"""
from __future__ import annotations

import datetime
import io
import os
import random
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import pytest
from google.protobuf.descriptor import FieldDescriptor as FD
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from controller.proto import routing_pb2
from controller.proto.routing_pb2 import Adjacency, Hello, Lsa, LsaAck, LsaId, PrefixEntry
from controller.routing.router import auth_code
from dmsc import pcap
from tests.conftest import ROOT
from traffic.wire import codec, defs, layers, names

TSHARK = shutil.which("tshark")
LUA = pcap.DISSECTOR
LUA_TEXT = LUA.read_text()

KEY = b"dissector-test-domain-key"
TS_NS = 1_700_000_000_123_456_789          # 2023-11-14 22:13:20.123456789 UTC
PCAP_T0 = 1_700_000_000                    # capture timestamps: fixed, not "now"
MALFORMED = str(0x07000000)                # expert group PI_MALFORMED, as tshark prints it
ERROR = str(0x00800000)                    # expert severity PI_ERROR
# what tshark prints when a script fails to load ("Lua: syntax error: ...",
# "Lua: Error during loading: ...") or a dissector raises ("Lua Error: ...")
LUA_FAILURE = re.compile(r"Lua:? .*error", re.I)
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


# -- the frames ----------------------------------------------------------------
def key_text(name: str) -> str:
    """The dissector's spelling of a name's key: 4 hex groups."""
    return names.format_key(names.name_key(name)).split("/")[0]


def signed(msg_type: int, tlv: int, body: bytes, router: str, msg_id: int) -> Ether:
    """A hello/LSA/LSA-ack frame as Router._frame sends it."""
    return Ether(codec.encode(msg_type, names.switch_name(), names.switch_name(router),
                              [(tlv, body), (codec.TLV_AUTH, auth_code(KEY, msg_type, body))],
                              msg_id=msg_id, hop_limit=1, eth_src=MAC_A, eth_dst=MAC_B))


HELLO = Hello(router="sg1", router_id=1, port=2, hello_ms=80, dead_ms=240, heard=["sr1", "sr2"])
LSA = Lsa(origin="sg4", origin_id=4, fragment=2, seq=2**40 + 5, lifetime_ms=3_600_000, kind="sg",
          adjacencies=[Adjacency(neighbor="sr3", cost=1, port=2),
                       Adjacency(neighbor="sr2", cost=10, port=3)],
          prefixes=[PrefixEntry(prefix="/B/4", port=1), PrefixEntry(prefix="/A/4", port=1)])
ACK = LsaAck(ids=[LsaId(origin="sg4", fragment=2, seq=2**40 + 5), LsaId(origin="sr3", fragment=1, seq=9)],
             summary=True, first=LsaId(origin="a", fragment=1), last=LsaId(origin="z", fragment=7))
RECORDS = [  # newest first, as the switches push them
    dict(switch_id=4, ingress_port=2, egress_port=1, ingress_ts=0x1234_5678_9ABC,
         egress_ts=0x1234_5678_9ABC + 250, enq_qdepth=3, deq_timedelta=40),
    dict(switch_id=13, ingress_port=1, egress_port=3, ingress_ts=5_000_000_000,
         egress_ts=5_000_000_031, enq_qdepth=0, deq_timedelta=7),
    dict(switch_id=1, ingress_port=defs.CPU_PORT, egress_port=2, ingress_ts=1_000_000,
         egress_ts=1_000_012, enq_qdepth=1, deq_timedelta=0),
]
NONCE = bytes.fromhex("00112233445566778899aabbccddeeff")
SIGNATURE = bytes(range(64))


def good_frames() -> list[Ether]:
    """One frame of every message type, in type order."""
    kw = dict(eth_src=MAC_A, eth_dst=MAC_B)
    req = layers.request("/B/4", "/A/1", "echo", {"x": 1, "s": "a,b"}, msg_id=0x01020304,
                         hop_limit=30, **kw)
    probe = layers.probe("/B/4", names.switch_name("sg1"), msg_id=500,
                         records=[layers.ProbeRecord(**r) for r in RECORDS], **kw)
    probe[layers.DMSC].flags = defs.FLAG_PROBE_FULL
    echo = layers.frame(defs.TYPE_ECHO, names.switch_name(), names.switch_name("sg1"), msg_id=3,
                        hop_limit=1, **kw)
    echo[layers.DMSC].flags = defs.FLAG_ECHO_REFLECTED
    frames = {
        defs.TYPE_REQUEST: req,
        defs.TYPE_RESPONSE: layers.response(req[layers.DMSC], "/B/4", {"echo": {"x": 1}}, **kw),
        defs.TYPE_ERROR: layers.error(req[layers.DMSC], "/B/4", codec.STATUS_UNKNOWN_METHOD,
                                      "no method 'nope'", **kw),
        defs.TYPE_ANNOUNCE: layers.frame(
            defs.TYPE_ANNOUNCE, names.switch_name(), "/B/4", msg_id=77, tlvs=[
                layers.tlv_text(codec.TLV_PREFIX, "/B"),
                layers.TLV(type=codec.TLV_SIGNATURE, value=SIGNATURE),
                layers.tlv_text(codec.TLV_KEY_ID, "pod4-ed25519"),
                layers.TLV(type=codec.TLV_TIMESTAMP, value=struct.pack("!Q", TS_NS)),
                layers.TLV(type=codec.TLV_NONCE, value=NONCE)], **kw),
        defs.TYPE_ANNOUNCE_ACK: layers.frame(
            defs.TYPE_ANNOUNCE_ACK, "/B/4", names.switch_name("sg4"), msg_id=77,
            tlvs=[layers.tlv_text(codec.TLV_PREFIX, "/B"), layers.tlv_status(codec.STATUS_OK)], **kw),
        defs.TYPE_ANNOUNCE_NACK: layers.frame(
            defs.TYPE_ANNOUNCE_NACK, "/C/9", names.switch_name("sg4"), msg_id=78,
            tlvs=[layers.tlv_text(codec.TLV_PREFIX, "/C"),
                  layers.tlv_status(codec.STATUS_REFUSED, "bad signature")], **kw),
        defs.TYPE_HELLO: signed(defs.TYPE_HELLO, codec.TLV_HELLO, HELLO.SerializeToString(), "sg1", 101),
        defs.TYPE_LSA: signed(defs.TYPE_LSA, codec.TLV_LSA, LSA.SerializeToString(), "sg4", 102),
        defs.TYPE_LSA_ACK: signed(defs.TYPE_LSA_ACK, codec.TLV_LSA, ACK.SerializeToString(), "sr3", 103),
        defs.TYPE_PROBE: probe,
        defs.TYPE_PROBE_REPLY: layers.probe_reply(probe[layers.DMSC], "/B/4", **kw),
        defs.TYPE_WITHDRAW: layers.frame(defs.TYPE_WITHDRAW, names.switch_name(), "/café/1", msg_id=900,
                                         tlvs=[layers.tlv_text(codec.TLV_PREFIX, "/café")], **kw),
        defs.TYPE_ECHO: echo,
    }
    assert sorted(frames) == sorted(defs.TYPE_NAMES)          # every message type
    return [frames[t] for t in sorted(frames)]


def with_bytes(frame: Ether, offset: int, value: bytes) -> Ether:
    """``frame`` with bytes replaced at ``offset`` into the DMSC header."""
    raw = bytearray(bytes(frame))
    at = defs.ETH_HDR_BYTES + offset
    raw[at:at + len(value)] = value
    return Ether(bytes(raw))


def control_frame(body: bytes, tlv=codec.TLV_LSA, msg_type=defs.TYPE_LSA) -> Ether:
    """An LSA (or another control frame) carrying ``body``, HMAC and all."""
    return signed(msg_type, tlv, body, "sr3", 666)


def with_tlv(msg_type: int, tlv: int, value: bytes) -> Ether:
    return layers.frame(msg_type, "/A", "/A/1", tlvs=[layers.TLV(type=tlv, value=value)],
                        eth_src=MAC_A, eth_dst=MAC_B)


# (frame, what the expert message must say)
def malformed_frames() -> list[tuple[Ether, str]]:
    kw = dict(eth_src=MAC_A, eth_dst=MAC_B)
    req = layers.request("/B/4", "/A/1", "echo", {"x": 1}, msg_id=42, **kw)
    raw = bytes(req)
    first_tlv = defs.DMSC_HDR_BYTES                       # no records: TLVs follow the header
    long_lsa = Lsa(origin="evil", seq=9, adjacencies=[Adjacency(neighbor="n" * 50)]).SerializeToString()
    return [
        (Ether(raw[:defs.ETH_HDR_BYTES + 20]), "truncated header: 20 of 44 bytes"),
        (Ether(raw[:defs.ETH_HDR_BYTES]), "truncated header: 0 of 44 bytes"),
        (with_bytes(req, first_tlv + 1, struct.pack("!H", 700)),
         "TLV dst_name: length 700 runs past the end of the TLVs"),
        (Ether(raw[:-5]), "runs past the end of the frame"),
        (with_bytes(req, 40, bytes([5])), "rec_count 5 claims 140 bytes of records"),
        (Ether(bytes(Ether(type=defs.ETHERTYPE_DMSC, src=MAC_A, dst=MAC_B)) + bytes(range(256)) * 3),
         "rec_count 40 claims 1120 bytes of records"),
        (Ether(raw[:defs.ETH_HDR_BYTES + 42] + struct.pack("!H", 2) + b"\x01\x00"),
         "too few for a TLV header"),
        # garbage protobuf in LSA / LSA-ack / hello TLVs
        (control_frame(long_lsa[:-7]), "Lsa body: field 7: length 52 runs past the end"),
        (control_frame(b"\x0f\x01\x02"), "Lsa body: field 1: wire type 7 is not valid"),
        (control_frame(b"\x08\x01"), "Lsa.origin (field 1) has wire type 0"),
        (control_frame(b"\x18" + b"\x80" * 10 + b"\x00"), "field 3: varint is longer than 10 bytes"),
        (control_frame(b"\x18" + b"\xff" * 10), "field 3: varint overflows 64 bits"),
        (control_frame(b"\x0a\xff\xff\xff\xff\x0f", msg_type=defs.TYPE_LSA_ACK),
         "LsaAck body: field 1: length 4294967295 runs past the end"),
        (control_frame(b"\x32", tlv=codec.TLV_HELLO, msg_type=defs.TYPE_HELLO),
         "Hello body: field 6: length varint runs past the end"),
        # TLV values of the wrong size
        (with_tlv(defs.TYPE_ERROR, codec.TLV_STATUS, b"\x01"), "status TLV of 1 bytes"),
        (with_tlv(defs.TYPE_ANNOUNCE, codec.TLV_TIMESTAMP, b"\x01\x02\x03"), "timestamp TLV of 3 bytes"),
        (with_tlv(defs.TYPE_PROBE_REPLY, codec.TLV_PROBE_RECORDS, bytes(30)),
         "probe_records TLV of 30 bytes is not a multiple of 28"),
    ]


# -- running tshark ------------------------------------------------------------------
@pytest.fixture(scope="module")
def tshark_env(tmp_path_factory):
    """tshark's environment: a HOME of its own (no personal plugins or prefs)."""
    home = tmp_path_factory.mktemp("tshark-home")
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), LC_ALL="C.UTF-8")
    env.pop("WIRESHARK_CONFIG_DIR", None)
    return env


def run(env, *args) -> subprocess.CompletedProcess:
    """tshark with the dissector; fails on any Lua error, loading or dissecting."""
    res = subprocess.run([TSHARK, "-X", f"lua_script:{LUA}", *args], env=env,
                         capture_output=True, text=True, errors="replace", timeout=120)
    both = res.stdout + res.stderr
    assert "Lua Error" not in both, both              # a dissector that raised, in the tree
    assert not LUA_FAILURE.search(res.stderr), res.stderr   # a script that did not load
    assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def lua_loaded(tshark_env):
    """Skip (saying why) when this tshark runs no Lua; fail if our script does not load."""
    if TSHARK is None:
        pytest.skip("needs tshark (Debian package 'tshark')")
    version = subprocess.run([TSHARK, "-v"], capture_output=True, text=True, env=tshark_env).stdout
    if re.search(r"without Lua", version):
        pytest.skip("this tshark is built without Lua")
    res = subprocess.run([TSHARK, "-G", "protocols", "-X", f"lua_script:{LUA}"], env=tshark_env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert not LUA_FAILURE.search(res.stderr), res.stderr   # our bug, not the machine's
    if not any(line.split("\t")[2:3] == ["dmsc"] for line in res.stdout.splitlines()):
        pytest.skip("tshark loads no user Lua scripts here (as root it needs "
                    "run_user_scripts_when_superuser = true in its init.lua): " + res.stderr.strip())
    return version.splitlines()[0]


def write_pcap(path, frames) -> str:
    pkts = []
    for i, f in enumerate(frames):
        p = Ether(bytes(f))
        p.time = PCAP_T0 + i
        pkts.append(p)
    wrpcap(str(path), pkts)
    return str(path)


def pdml(env, pcap_file) -> list[ET.Element]:
    """Per packet, the <proto name="dmsc"> element of tshark's PDML."""
    res = run(env, "-r", pcap_file, "-T", "pdml")
    packets = ET.fromstring(res.stdout).findall("packet")
    out = []
    for pkt in packets:
        protos = [p for p in pkt.findall("proto") if p.get("name") == "dmsc"]
        assert len(protos) == 1, ET.tostring(pkt)[:500]
        out.append(protos[0])
    return out


def fields(proto: ET.Element, attr="show") -> dict[str, list[str]]:
    """name -> every value of that field in the packet, in order."""
    out: dict[str, list[str]] = {}
    for f in proto.iter("field"):
        out.setdefault(f.get("name"), []).append(f.get(attr))
    return out


def labels(proto: ET.Element) -> list[str]:
    return [f.get("showname") or "" for f in proto.iter("field")]


def info_lines(env, pcap_file, *extra) -> list[str]:
    """tshark's summary, the Info column only."""
    res = run(env, "-r", pcap_file, "-o", 'gui.column.format:"Info","%i"', *extra)
    return [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def good_pcap(tmp_path_factory, lua_loaded):
    return write_pcap(tmp_path_factory.mktemp("pcap") / "good.pcap", good_frames())


@pytest.fixture(scope="module")
def bad_pcap(tmp_path_factory, lua_loaded):
    return write_pcap(tmp_path_factory.mktemp("pcap") / "malformed.pcap",
                      [f for f, _ in malformed_frames()])


# -- no tshark needed: the dissector's tables agree with the code ----------------------------
def lua_table(name: str) -> dict[int, str]:
    body = re.search(r"local %s = \{(.*?)\n\}" % name, LUA_TEXT, re.S).group(1)
    return {int(k): v for k, v in re.findall(r'\[(\d+)\] = "(\w+)"', body)}


def test_dissector_tables_match_the_codec():
    assert lua_table("TYPE_NAMES") == defs.TYPE_NAMES
    assert lua_table("TLV_NAMES") == codec.TLV_TYPES
    assert lua_table("STATUS_NAMES") == codec.STATUS_NAMES
    for const, value in (("ETHERTYPE_DMSC", defs.ETHERTYPE_DMSC), ("HDR_LEN", defs.DMSC_HDR_BYTES),
                         ("REC_LEN", defs.PROBE_REC_BYTES), ("MAX_RECORDS", defs.MAX_PROBE_RECORDS),
                         ("DMSC_VERSION", defs.DMSC_VERSION), ("CPU_PORT", defs.CPU_PORT),
                         ("FLAG_PROBE_FULL", defs.FLAG_PROBE_FULL), ("TYPE_LSA_ACK", defs.TYPE_LSA_ACK),
                         ("FLAG_ECHO_REFLECTED", defs.FLAG_ECHO_REFLECTED)):
        assert int(re.search(r"local %s = (\w+)" % const, LUA_TEXT).group(1), 0) == value, const


@pytest.mark.parametrize("message", ["Hello", "Adjacency", "PrefixEntry", "Lsa", "LsaId", "LsaAck"])
def test_dissector_protobuf_schemas_match_routing_proto(message):
    """Field numbers, names and kinds of the hand-written decoder against routing_pb2."""
    body = re.search(r"\n    %s = \{(.*?)\n    \}," % message, LUA_TEXT, re.S).group(1)
    lua = {int(n): (name, kind, sub) for n, name, kind, sub in
           re.findall(r'\[(\d+)\] = \{"(\w+)", "(\w+)"(?:, [\w.]+)?(?:, "(\w+)")?\}', body)}
    kinds = {FD.TYPE_STRING: "string", FD.TYPE_UINT32: "uint32", FD.TYPE_UINT64: "uint64",
             FD.TYPE_BOOL: "bool", FD.TYPE_MESSAGE: "message"}
    want = {f.number: (f.name, kinds[f.type], f.message_type.name if f.message_type else "")
            for f in getattr(routing_pb2, message).DESCRIPTOR.fields}
    assert lua == want


# -- every message type, every field ----------------------------------------------------------
def test_tshark_version_is_known(lua_loaded):
    assert lua_loaded.startswith("TShark (Wireshark) ")


def expected_fields(frame: Ether) -> dict[str, list[str]]:
    """What tshark must show for ``frame``, from the frame's own bytes and inputs."""
    d = codec.decode(bytes(frame))
    want = {
        "dmsc.version": [str(defs.DMSC_VERSION)], "dmsc.type": [str(d.type)],
        "dmsc.hop_limit": [str(d.hop_limit)], "dmsc.msg_id": [str(d.msg_id)],
        "dmsc.dst_key": [key_text(d.dst_name)], "dmsc.src_key": [key_text(d.src_name)],
        "dmsc.dst_name": [d.dst_name], "dmsc.src_name": [d.src_name],
        "dmsc.rec_count": [str(d.rec_count)], "dmsc.reserved": ["0x00"],
        "dmsc.tlv_len": [str(sum(3 + len(v) for _, v in d.tlvs))],
        "dmsc.tlv.type": [str(t) for t, _ in d.tlvs],
        "dmsc.tlv.length": [str(len(v)) for _, v in d.tlvs],
        "dmsc.flags.probe_full": [str(d.flags & defs.FLAG_PROBE_FULL)],
    }
    for t, v in d.tlvs:
        field = {codec.TLV_METHOD: "dmsc.method", codec.TLV_BODY: "dmsc.body",
                 codec.TLV_PREFIX: "dmsc.prefix", codec.TLV_KEY_ID: "dmsc.key_id"}.get(t)
        if field:
            want[field] = [v.decode()]
        if t == codec.TLV_STATUS:
            want["dmsc.status"] = [str(struct.unpack("!H", v[:2])[0])]
            want["dmsc.status_text"] = [v[2:].decode()]
        if t == codec.TLV_TIMESTAMP:
            want["dmsc.timestamp_ns"] = [str(struct.unpack("!Q", v)[0])]
    return want


def hex_of(frame_fields, name):
    return [v.replace(":", "") for v in frame_fields[name]]


def date_shows(ns: int) -> set[str]:
    """The ways tshark versions print an absolute time in UTC."""
    dt = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc)
    frac = f"{ns % 10**9:09d}"
    return {f"{dt:%b} {dt.day:2d}, {dt:%Y %H:%M:%S}.{frac} UTC",
            f"{dt:%Y-%m-%dT%H:%M:%S}.{frac}Z", f"{dt:%Y-%m-%d %H:%M:%S}.{frac} UTC"}


def record_fields(records) -> dict[str, list[str]]:
    out = {f"dmsc.record.{k}": [str(r[k]) for r in records] for k in records[0]}
    out["dmsc.record.hop_time"] = [str(r["egress_ts"] - r["ingress_ts"]) for r in records]
    return out


def test_every_message_type_every_field(tshark_env, good_pcap):
    frames = good_frames()
    protos = pdml(tshark_env, good_pcap)
    assert len(protos) == len(frames) == len(defs.TYPE_NAMES)
    for frame, proto in zip(frames, protos):
        got, raw = fields(proto), fields(proto, "value")
        d = codec.decode(bytes(frame))
        name = defs.TYPE_NAMES[d.type]
        for field, values in expected_fields(frame).items():
            assert got.get(field) == values, (name, field, got.get(field))
        shown = labels(proto)
        assert f"Type: {name} ({d.type})" in shown, name
        assert not any(f.startswith("_ws.expert") for f in got), (name, shown)   # nothing flagged
        assert "dmsc.dissector_error" not in got
        assert f"Destination key: {key_text(d.dst_name)} (key of {d.dst_name})" in shown

        if d.type == defs.TYPE_ERROR:
            assert "Status: unknown_method (3)" in shown
            assert got["dmsc.status_text"] == ["no method 'nope'"]
        if d.type == defs.TYPE_ANNOUNCE_NACK:
            assert "Status: refused (6)" in shown
        if d.type in (defs.TYPE_RESPONSE, defs.TYPE_ANNOUNCE_ACK):
            assert "Status: ok (0)" in shown
        if d.type == defs.TYPE_REQUEST:
            assert got["dmsc.body"] == ['{"x":1,"s":"a,b"}']
        if d.type == defs.TYPE_ANNOUNCE:
            assert got["dmsc.timestamp"][0] in date_shows(TS_NS), got["dmsc.timestamp"]
            assert any(s.endswith(": 2023-11-14 22:13:20.123456789 UTC") for s in shown)
            assert hex_of(raw, "dmsc.signature") == [SIGNATURE.hex()]
            assert hex_of(raw, "dmsc.nonce") == [NONCE.hex()]
        if d.type in (defs.TYPE_HELLO, defs.TYPE_LSA, defs.TYPE_LSA_ACK):
            body = d.tlv(codec.TLV_HELLO if d.type == defs.TYPE_HELLO else codec.TLV_LSA)
            assert hex_of(raw, "dmsc.auth") == [auth_code(KEY, d.type, body).hex()]
        if d.type == defs.TYPE_HELLO:
            for f in ("router", "router_id", "port", "hello_ms", "dead_ms"):
                assert got[f"dmsc.hello.{f}"] == [str(getattr(HELLO, f))], f
            assert got["dmsc.hello.heard"] == list(HELLO.heard)
        if d.type == defs.TYPE_LSA:
            for f in ("origin", "origin_id", "fragment", "seq", "lifetime_ms", "kind"):
                assert got[f"dmsc.lsa.{f}"] == [str(getattr(LSA, f))], f
            assert got["dmsc.lsa.seq"] == [str(2**40 + 5)]            # all 64 bits
            assert got["dmsc.lsa.adj.neighbor"] == [a.neighbor for a in LSA.adjacencies]
            assert got["dmsc.lsa.adj.cost"] == [str(a.cost) for a in LSA.adjacencies]
            assert got["dmsc.lsa.adj.port"] == [str(a.port) for a in LSA.adjacencies]
            assert got["dmsc.lsa.prefix"] == [p.prefix for p in LSA.prefixes]
            assert got["dmsc.lsa.prefix_port"] == [str(p.port) for p in LSA.prefixes]
            assert "Adjacency: sr3, cost 1, port 2" in shown
        if d.type == defs.TYPE_LSA_ACK:
            ids = [*ACK.ids, ACK.first, ACK.last]
            assert got["dmsc.lsa_ack.origin"] == [i.origin for i in ids]
            assert got["dmsc.lsa_ack.fragment"] == [str(i.fragment) for i in ids]
            assert got["dmsc.lsa_ack.seq"] == [str(i.seq) for i in ACK.ids]   # 0 is not sent
            assert got["dmsc.lsa_ack.summary"] == ["1"]
            assert "first: a fragment 1 seq 0" in shown and "last: z fragment 7 seq 0" in shown
        if d.type in (defs.TYPE_PROBE, defs.TYPE_PROBE_REPLY):
            for field, values in record_fields(RECORDS).items():
                assert got[field] == values, (name, field)
            assert "Ingress port: 255 (CPU: injected by the agent)" in shown
        if d.type == defs.TYPE_PROBE:
            assert got["dmsc.flags.probe_full"] == ["1"] and got["dmsc.rec_count"] == ["3"]
            assert "dmsc.record.echoed" not in got
        if d.type == defs.TYPE_PROBE_REPLY:
            assert got["dmsc.record.echoed"] == ["1"] * len(RECORDS)
        if d.type == defs.TYPE_WITHDRAW:
            assert got["dmsc.src_name"] == ["/café/1"] and got["dmsc.prefix"] == ["/café"]


def test_info_column_names_type_names_and_msg_id(tshark_env, good_pcap):
    lines = info_lines(tshark_env, good_pcap)
    frames = good_frames()
    assert len(lines) == len(frames)
    for frame, line in zip(frames, lines):
        d = codec.decode(bytes(frame))
        assert line.startswith(f"{defs.TYPE_NAMES[d.type]} dst={d.dst_name} src={d.src_name} "
                               f"msg_id={d.msg_id} hop_limit={d.hop_limit}"), line
        assert "[Malformed]" not in line
    by_type = dict(zip(sorted(defs.TYPE_NAMES), lines))
    assert by_type[defs.TYPE_REQUEST].endswith("method=echo")
    assert by_type[defs.TYPE_ERROR].endswith("status=unknown_method")
    assert by_type[defs.TYPE_ANNOUNCE_NACK].endswith("status=refused prefix=/C")
    assert by_type[defs.TYPE_HELLO].endswith("router=sg1")
    assert by_type[defs.TYPE_LSA].endswith(f"origin=sg4 fragment=2 seq={2**40 + 5}")
    assert by_type[defs.TYPE_LSA_ACK].endswith("acks=2 summary")
    assert by_type[defs.TYPE_PROBE].endswith("hops=4:250us 13:31us 1:12us")
    assert by_type[defs.TYPE_PROBE_REPLY].endswith("echoed=4:250us 13:31us 1:12us")


def test_verbose_text_view(tshark_env, good_pcap):
    out = run(tshark_env, "-r", good_pcap, "-V", "-O", "dmsc").stdout
    for line in ("Type: request (1)", "Hop limit: 30", "Message id: 16909060 (0x01020304)",
                 f"Destination key: {key_text('/B/4')} (key of /B/4)", "Method: echo",
                 "Status: refused (6)", "Status text: bad signature",
                 "[Per-hop time (us, egress_ts - ingress_ts): 250]", "Router: sg1", "Heard: sr2",
                 "Adjacency: sr2, cost 10, port 3", "Prefix: /B/4, port 1", "Summary: True"):
        assert line in out, line


def test_padding_after_the_tlvs_is_ignored(tshark_env, tmp_path, lua_loaded):
    frame = good_frames()[0]
    capture = write_pcap(tmp_path / "padded.pcap", [Ether(bytes(frame) + bytes(20))])
    got = fields(pdml(tshark_env, capture)[0], "value")
    assert got["dmsc.padding"] == ["00" * 20]
    assert not any(f.startswith("_ws.expert") for f in got)


def test_a_second_copy_of_the_plugin_is_no_error(tshark_env, tmp_path, lua_loaded):
    """Installed in the personal plugins folder and given with -X: the first wins."""
    plugins = tmp_path / "home" / ".local" / "lib" / "wireshark" / "plugins"
    plugins.mkdir(parents=True)
    shutil.copy(LUA, plugins)
    env = dict(tshark_env, HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"))
    capture = write_pcap(tmp_path / "one.pcap", good_frames()[:1])
    assert info_lines(env, capture)[0].startswith("request dst=/B/4 src=/A/1")   # run(): no Lua error


def test_the_doc_lists_every_field(lua_loaded, tshark_env):
    """docs/wireshark.md's field table and the dissector's registered fields agree."""
    res = subprocess.run([TSHARK, "-G", "fields", "-X", f"lua_script:{LUA}"], env=tshark_env,
                         capture_output=True, text=True, timeout=120)
    registered = {ln.split("\t")[2] for ln in res.stdout.splitlines()
                  if ln.startswith(("F\t", "P\t")) and ln.split("\t")[2].startswith("dmsc.")}
    doc = (ROOT / "docs" / "wireshark.md").read_text()
    table = doc[doc.index("## Display-filter fields"):doc.index("## Examples")]
    listed = set()
    for cell in re.findall(r"^\| ([^|]+) \|", table, re.M):
        last = None
        for name in re.findall(r"`([\w.]+)`", cell):
            if name.startswith("dmsc."):
                last = name.rsplit(".", 1)[0] if name.count(".") > 1 else "dmsc"
                listed.add(name)
            elif name.startswith(".") and last:          # `.router_id` after dmsc.hello.router
                listed.add(last + name)
    assert listed == registered, (sorted(listed - registered), sorted(registered - listed))


# -- malformed frames -------------------------------------------------------------------------
def test_malformed_frames_are_marked_never_a_lua_error(tshark_env, bad_pcap):
    cases = malformed_frames()
    protos = pdml(tshark_env, bad_pcap)
    assert len(protos) == len(cases)
    for (frame, says), proto in zip(cases, protos):
        got = fields(proto)
        messages = got.get("_ws.expert.message", [])
        assert any(says in m for m in messages), (says, messages)
        i = [j for j, m in enumerate(messages) if says in m][0]
        assert got["_ws.expert.group"][i] == MALFORMED and got["_ws.expert.severity"][i] == ERROR
        assert "dmsc.malformed" in got or "dmsc.bad_protobuf" in got
        assert "dmsc.dissector_error" not in got, messages
    for (frame, says), line in zip(cases, info_lines(tshark_env, bad_pcap)):
        if len(frame) == defs.ETH_HDR_BYTES:
            # nothing after Ethernet: the dissector consumed 0 bytes, which Wireshark
            # takes as "not mine" and names the EtherType instead (the expert item stays)
            continue
        assert line.endswith("[Malformed]"), (says, line)
    # the text views too: run() asserts no "Lua Error" in stdout or stderr
    verbose = run(tshark_env, "-r", bad_pcap, "-V").stdout
    assert verbose.count("Expert Info (Error/Malformed)") >= len(cases)
    assert len(run(tshark_env, "-r", bad_pcap, "-Y", "_ws.malformed", "-T", "fields",
                   "-e", "frame.number").stdout.split()) == len(cases)


def test_garbage_lsa_still_shows_what_parsed(tshark_env, bad_pcap):
    """A body cut in its second adjacency keeps the fields before the cut."""
    idx = [i for i, (_, says) in enumerate(malformed_frames()) if says.startswith("Lsa body: field 7")][0]
    got = fields(pdml(tshark_env, bad_pcap)[idx])
    assert got["dmsc.lsa.origin"] == ["evil"] and got["dmsc.lsa.seq"] == ["9"]


def mutated_frames(n: int, seed: int = 12) -> list[Ether]:
    """Deterministic junk: the frames above with bytes flipped, cut short, or
    their tail (often a protobuf body) replaced by random bytes."""
    rng = random.Random(seed)
    base = [bytes(f) for f in good_frames()] + [bytes(f) for f, _ in malformed_frames()]
    out = []
    for _ in range(n):
        raw = bytearray(rng.choice(base))
        how = rng.randrange(3)
        if how == 0 and len(raw) > defs.ETH_HDR_BYTES:
            for _ in range(rng.randint(1, 6)):
                raw[rng.randrange(defs.ETH_HDR_BYTES, len(raw))] = rng.randrange(256)
        elif how == 1:
            raw = raw[:rng.randint(defs.ETH_HDR_BYTES, len(raw))]
        else:
            at = rng.randint(defs.ETH_HDR_BYTES, len(raw))
            raw[at:] = bytes(rng.randrange(256) for _ in range(len(raw) - at))
        out.append(Ether(bytes(raw)))
    return out


def test_mutated_frames_never_break_the_dissector(tshark_env, tmp_path, lua_loaded):
    frames = mutated_frames(400)
    capture = write_pcap(tmp_path / "mutated.pcap", frames)
    out = run(tshark_env, "-r", capture, "-V", "-O", "dmsc").stdout     # run(): no Lua error
    assert out.count("DMSC (Distributed Micro Service Communication)") == len(frames)
    assert "dissector error" not in out


# -- display filters --------------------------------------------------------------------------
def numbers(env, pcap_file, display_filter) -> list[int]:
    res = run(env, "-r", pcap_file, "-Y", display_filter, "-T", "fields", "-e", "frame.number")
    return [int(n) for n in res.stdout.split()]


def test_filter_by_destination_name(tshark_env, good_pcap):
    decoded = [codec.decode(bytes(f)) for f in good_frames()]
    to_b4 = [i + 1 for i, d in enumerate(decoded) if d.dst_name == "/B/4"]
    assert to_b4 == [1, 5, 10]             # request, announce_ack, probe
    assert numbers(tshark_env, good_pcap, 'dmsc.dst_name == "/B/4"') == to_b4


@pytest.mark.parametrize("display_filter, types", [
    ("dmsc.msg_id == 0x01020304", ["request", "response", "error"]),   # follow one call
    ("dmsc.type == 7 || dmsc.type == 8", ["hello", "lsa"]),
    (f'dmsc.src_name matches "^{names.SWITCHES}/"',             # from a switch
     ["announce_ack", "announce_nack", "hello", "lsa", "lsa_ack", "probe", "echo"]),
    ("dmsc.record.hop_time > 100", ["probe", "probe_reply"]),
    ("dmsc.status == 6", ["announce_nack"]),
    ('dmsc.lsa.prefix == "/A/4"', ["lsa"]),
    ("dmsc.timestamp_ns > 0", ["announce"]),
    ("dmsc.flags.probe_full == 1", ["probe"]),
    ("dmsc.flags.echo_reflected == 1", ["echo"]),
    (f'dmsc.dst_key == "{key_text("/A/1")}"', ["response", "error"]),
])
def test_display_filters(tshark_env, good_pcap, display_filter, types):
    order = [defs.TYPE_NAMES[t] for t in sorted(defs.TYPE_NAMES)]
    assert [order[n - 1] for n in numbers(tshark_env, good_pcap, display_filter)] == types


# -- dmsc.pcap --------------------------------------------------------------------
@pytest.fixture
def own_home(monkeypatch, tshark_env):
    monkeypatch.setenv("HOME", tshark_env["HOME"])
    monkeypatch.setenv("XDG_CONFIG_HOME", tshark_env["XDG_CONFIG_HOME"])


def test_show_prints_one_line_per_frame(good_pcap, own_home, capsys):
    assert pcap.show(good_pcap) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(defs.TYPE_NAMES)
    for line, t in zip(lines, sorted(defs.TYPE_NAMES)):
        assert " DMSC " in line and f" {defs.TYPE_NAMES[t]} dst=" in line, line
    assert "request dst=/B/4 src=/A/1 msg_id=16909060 hop_limit=30 method=echo" in lines[0]


def test_show_filters_and_details(good_pcap, own_home):
    out = io.StringIO()
    assert pcap.show(good_pcap, 'dmsc.dst_name == "/B/4"', out=out) == 0
    assert [ln.split()[0] for ln in out.getvalue().splitlines()] == ["1", "5", "10"]
    out = io.StringIO()
    assert pcap.show(good_pcap, "dmsc.msg_id == 78", verbose=True, out=out) == 0
    text = out.getvalue()
    assert "Status: refused (6)" in text and "Status text: bad signature" in text
    assert "Type: announce_nack (6)" in text and "Echo" not in text


def test_show_says_what_is_wrong(good_pcap, own_home, tmp_path):
    with pytest.raises(RuntimeError, match="tshark failed .*dmsc.no_such_field"):
        pcap.show(good_pcap, "dmsc.no_such_field == 1", out=io.StringIO())
    with pytest.raises(RuntimeError, match="no such capture file"):
        pcap.show(tmp_path / "missing.pcap", out=io.StringIO())


def test_show_without_tshark_names_it(monkeypatch, tmp_path):
    """Runs everywhere: no tshark on PATH is one clear RuntimeError."""
    capture = write_pcap(tmp_path / "one.pcap", good_frames()[:1])
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"tshark not found on PATH: .*package 'tshark'"):
        pcap.show(capture)
