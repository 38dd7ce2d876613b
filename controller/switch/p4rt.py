"""The one P4Runtime adapter: nothing else in the project speaks P4Runtime.

One :class:`SwitchConnection` per switch, each with its own gRPC channel,
stream and P4Info index (:class:`P4InfoIndex`), so one process can drive many
switches. It speaks P4Runtime with grpcio and the generated code in ``p4/``
(p4lang/p4runtime v1.4.1's protos), on protobuf >= 6 with its upb backend;
p4runtime-shell is the users' inspection tool, in a venv of its own
(docs/decisions.md, "P4Runtime code for protobuf 6"). It offers what the
control plane needs:

* connect + arbitration (:meth:`SwitchConnection.connect`), pipeline push
  (:meth:`SwitchConnection.set_pipeline`) and fetch (:meth:`SwitchConnection.fetch_p4info`);
* building entities by P4Info name (:meth:`SwitchConnection.table_entry`, ...) and
  decoding them back (:meth:`SwitchConnection.decode_entry`);
* batched writes (:meth:`SwitchConnection.write`: many inserts/modifies/deletes in one
  Write RPC), reads, counter and direct-counter reads;
* the stream channel: :meth:`SwitchConnection.packet_out`, :meth:`SwitchConnection.packet_in`.

Every failure is a :class:`SwitchError` subclass saying which switch, which
update of a batch and why. Nothing here prints or exits the process.
"""
from __future__ import annotations

import enum
import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field

import grpc
from google.protobuf import text_format
from google.rpc import code_pb2, status_pb2

from controller.switch.p4runtime.p4.config.v1 import p4info_pb2
from controller.switch.p4runtime.p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc

log = logging.getLogger("dmsc.p4rt")

INSERT = p4runtime_pb2.Update.INSERT
MODIFY = p4runtime_pb2.Update.MODIFY
DELETE = p4runtime_pb2.Update.DELETE
_OP_NAMES = {INSERT: "INSERT", MODIFY: "MODIFY", DELETE: "DELETE"}

# Updates per Write RPC: large enough to amortise the RPC, small enough to stay
# far below gRPC's 4 MB message limit with our entry sizes (~100 bytes).
MAX_BATCH = 2000
# A pipeline push carries the whole BMv2 JSON: allow more than gRPC's 4 MB default.
_MAX_MESSAGE = 64 * 1024 * 1024
_CHANNEL_OPTIONS = [("grpc.max_send_message_length", _MAX_MESSAGE),
                    ("grpc.max_receive_message_length", _MAX_MESSAGE)]


class SwitchError(Exception):
    """Base of every adapter error; ``switch`` names the switch."""

    def __init__(self, switch: str, message: str):
        self.switch = switch
        super().__init__(f"[{switch}] {message}")


class SwitchConnectionError(SwitchError):
    """The switch's P4Runtime server cannot be reached, or the stream broke."""


class NotPrimaryError(SwitchError):
    """Another client holds a higher election id: writes would be refused."""


class PipelineError(SwitchError):
    """The pipeline (P4Info + BMv2 JSON) could not be pushed or read."""


class UnknownP4Name(SwitchError):
    """A table, action, field or counter name that the P4Info does not have."""


class ReadError(SwitchError):
    pass


@dataclass
class WriteFailure:
    index: int          # position of the update in the batch passed to write()
    op: str             # INSERT / MODIFY / DELETE
    entity: str         # short description of the entity
    code: str           # gRPC canonical code name
    message: str


class WriteError(SwitchError):
    """Some updates of a batch failed; the others were applied (P4Runtime's
    CONTINUE_ON_ERROR). ``failures`` says which and why."""

    def __init__(self, switch: str, failures: list[WriteFailure], total: int):
        self.failures = failures
        self.total = total
        lines = [f"{len(failures)} of {total} updates failed:"]
        lines += [f"  #{f.index} {f.op} {f.entity}: {f.code} {f.message}"
                  for f in failures[:20]]
        if len(failures) > 20:
            lines.append(f"  ... and {len(failures) - 20} more")
        super().__init__(switch, "\n".join(lines))


_WAKE = object()


@dataclass
class PacketIn:
    payload: bytes
    metadata: dict[str, int] = field(default_factory=dict)


# -- P4Info index ----------------------------------------------------------
class P4Type(enum.Enum):
    """P4Info object kinds, by the P4Info field that lists them."""
    table = "tables"
    action = "actions"
    action_profile = "action_profiles"
    counter = "counters"
    direct_counter = "direct_counters"
    meter = "meters"
    direct_meter = "direct_meters"
    controller_packet_metadata = "controller_packet_metadata"
    digest = "digests"
    register = "registers"

    @property
    def pretty_name(self) -> str:
        return self.name.replace("_", " ")


class P4InfoIndex:
    """Names and ids of one P4Info. An object is found by its full name or by
    any dot-separated suffix of it that no other object of the same kind
    shares (``fib`` for ``DmscIngress.fib.fib``), as p4runtime-shell does."""

    def __init__(self, p4info: p4info_pb2.P4Info | None = None):
        self.p4info = p4info
        self._by_name: dict[tuple[P4Type, str], object] = {}
        self._by_id: dict[int, object] = {}
        if p4info is None:
            return
        suffixes: Counter = Counter()
        for kind in P4Type:
            for obj in getattr(p4info, kind.value):
                pre = obj.preamble
                self._by_id[pre.id] = obj
                parts = pre.name.split(".")
                for i in range(len(parts)):
                    key = (kind, ".".join(parts[i:]))
                    self._by_name[key] = obj
                    suffixes[key] += 1
        for key, n in suffixes.items():
            if n > 1 and key[1] != self._by_name[key].preamble.name:
                del self._by_name[key]

    def get_obj(self, kind: P4Type, name: str):
        return self._by_name.get((kind, name))

    def get_obj_id(self, kind: P4Type, name: str) -> int | None:
        obj = self.get_obj(kind, name)
        return None if obj is None else obj.preamble.id

    def get_obj_by_id(self, id_: int):
        return self._by_id[id_]

    def get_name_from_id(self, id_: int) -> str:
        return self._by_id[id_].preamble.name

    def get_mf_name(self, table: str, field_id: int) -> str | None:
        t = self.get_obj(P4Type.table, table)
        return next((mf.name for mf in t.match_fields if mf.id == field_id), None) if t else None

    def get_param_name(self, action: str, param_id: int) -> str | None:
        a = self.get_obj(P4Type.action, action)
        return next((p.name for p in a.params if p.id == param_id), None) if a else None


# -- the session: one channel, one stream ------------------------------------
class _Session:
    """One P4Runtime session: a channel, its stub, and the StreamChannel with
    a thread that sorts what the switch sends (arbitration, packet-ins)."""

    def __init__(self, name: str, grpc_addr: str, device_id: int,
                 election_id: tuple[int, int], role_name: str | None):
        self.name = name
        self.device_id = device_id
        self.election_id = election_id
        self.role_name = role_name
        self.is_primary = False
        self.channel = grpc.insecure_channel(grpc_addr, options=_CHANNEL_OPTIONS)
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self.stream_out_q: queue.Queue = queue.Queue()
        self.arbitration_q: queue.Queue = queue.Queue()
        self.packet_q: queue.Queue = queue.Queue()
        self.stream = self.stub.StreamChannel(self._requests())
        self.thread = threading.Thread(target=self._receive, name=f"p4rt-{name}", daemon=True)
        self.thread.start()

    def _requests(self):
        while True:
            msg = self.stream_out_q.get()
            if msg is None:
                return
            yield msg

    def _receive(self) -> None:
        try:
            for msg in self.stream:
                which = msg.WhichOneof("update")
                if which == "packet":
                    self.packet_q.put(msg.packet)
                elif which == "arbitration":
                    # the first one answers our handshake; later ones say that
                    # mastership moved (another client with a higher id)
                    self.is_primary = msg.arbitration.status.code == code_pb2.OK
                    self.arbitration_q.put(msg)
                elif which == "error":
                    log.warning("[%s] stream error from the switch: %s %s", self.name,
                                code_pb2.Code.Name(msg.error.canonical_code)
                                if msg.error.canonical_code in code_pb2.Code.values()
                                else msg.error.canonical_code, msg.error.message)
                else:
                    log.debug("[%s] stream message %s ignored", self.name, which)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                log.info("[%s] stream channel ended: %s %s", self.name, exc.code().name,
                         exc.details())
        finally:
            self.arbitration_q.put(None)
            self.packet_q.put(None)

    def handshake(self, timeout: float) -> str | None:
        """Arbitration; None when answered, else why not."""
        req = p4runtime_pb2.StreamMessageRequest()
        arb = req.arbitration
        arb.device_id = self.device_id
        arb.election_id.high, arb.election_id.low = self.election_id
        if self.role_name is not None:
            arb.role.name = self.role_name
        self.stream_out_q.put(req)
        try:
            rep = self.arbitration_q.get(timeout=timeout)
        except queue.Empty:
            rep = None
        if rep is None:
            return "no arbitration reply (is the switch up?)"
        return None

    def stamp(self, req) -> None:
        """Device, role and election id of a Write or SetForwardingPipelineConfig."""
        req.device_id = self.device_id
        if self.role_name is not None:
            req.role = self.role_name
        req.election_id.high, req.election_id.low = self.election_id

    def tear_down(self) -> None:
        self.stream_out_q.put(None)       # half-close: the server ends the stream
        self.thread.join(timeout=1.0)
        if self.thread.is_alive():        # it did not: cut it
            self.stream.cancel()
            self.thread.join(timeout=5.0)
        self.channel.close()


def _rpc_error(exc: grpc.RpcError) -> str:
    return f"P4Runtime RPC error ({exc.code().name}): {exc.details()}"


def write_failures(err: grpc.RpcError) -> list[tuple[int, p4runtime_pb2.Error]] | None:
    """(index, p4.Error) of every failed update in a Write's error, or None
    when the error carries no per-update details."""
    for key, value in (err.trailing_metadata() or ()):
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            out = []
            for i, any_msg in enumerate(status.details):
                e = p4runtime_pb2.Error()
                if any_msg.Unpack(e) and e.canonical_code != code_pb2.OK:
                    out.append((i, e))
            return out
    return None


def _canonical(value: int, bitwidth: int) -> bytes:
    """P4Runtime canonical bytestring: big-endian, no leading zero bytes."""
    if value < 0 or value >= (1 << bitwidth):
        raise ValueError(f"value {value:#x} does not fit in {bitwidth} bits")
    n = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(n, "big")


def _int(data: bytes) -> int:
    return int.from_bytes(data, "big")


def load_p4info(path) -> p4info_pb2.P4Info:
    """A P4Info from its text file (the committed p4src/build/dmsc.p4info.txtpb)."""
    info = p4info_pb2.P4Info()
    with open(path) as f:
        text_format.Merge(f.read(), info)
    return info


class SwitchConnection:
    """One switch's P4Runtime session. Use :meth:`connect` (or ``with``)."""

    def __init__(self, name: str, grpc_addr: str, device_id: int,
                 election_id: tuple[int, int] = (0, 1), role_name: str | None = None):
        self.name = name
        self.grpc_addr = grpc_addr
        self.device_id = device_id
        self.election_id = election_id
        self.role_name = role_name
        self.client: _Session | None = None
        self.ctx = P4InfoIndex()
        self.p4info: p4info_pb2.P4Info | None = None
        self._packet_md: dict[str, tuple] = {}
        self._stream_closed = False

    # -- session --------------------------------------------------------
    def connect(self, p4info_path: str | None = None, *, require_primary: bool = True,
                timeout: float = 3.0) -> "SwitchConnection":
        if not self._wait_channel(timeout):
            raise SwitchConnectionError(self.name, f"no P4Runtime server at {self.grpc_addr}")
        client = _Session(self.name, self.grpc_addr, self.device_id, self.election_id,
                          self.role_name)
        error = client.handshake(timeout)
        if error:
            client.tear_down()
            raise SwitchConnectionError(self.name, error)
        self.client = client
        self._stream_closed = False
        if require_primary and not client.is_primary:
            self.close()
            raise NotPrimaryError(self.name, f"election id {self.election_id} is not primary")
        if p4info_path is not None:
            self.load_p4info(p4info_path)
        return self

    def _wait_channel(self, timeout: float) -> bool:
        channel = grpc.insecure_channel(self.grpc_addr)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False
        finally:
            channel.close()

    @property
    def is_primary(self) -> bool:
        return bool(self.client and self.client.is_primary)

    def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            try:
                client.tear_down()
            except Exception as exc:   # closing a dead channel must not mask the cause
                log.info("[%s] closing the session: %s", self.name, exc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _need_client(self) -> _Session:
        if self.client is None:
            raise SwitchConnectionError(self.name, "not connected")
        return self.client

    # -- pipeline -------------------------------------------------------
    def load_p4info(self, p4info_path: str) -> None:
        self._set_p4info(load_p4info(p4info_path))

    def _set_p4info(self, p4info) -> None:
        self.p4info = p4info
        self.ctx = P4InfoIndex(p4info)
        self._packet_md = {}

    def set_pipeline(self, p4info_path: str, bmv2_json_path: str) -> None:
        """Push a pipeline (VERIFY_AND_COMMIT): this wipes the switch's tables."""
        client = self._need_client()
        try:
            p4info = load_p4info(p4info_path)
            with open(bmv2_json_path, "rb") as f:
                device_config = f.read()
        except (OSError, text_format.ParseError) as exc:
            raise PipelineError(self.name, f"SetForwardingPipelineConfig failed: {exc}") from None
        req = p4runtime_pb2.SetForwardingPipelineConfigRequest(
            action=p4runtime_pb2.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT)
        client.stamp(req)
        req.config.p4info.CopyFrom(p4info)
        req.config.p4_device_config = device_config
        try:
            client.stub.SetForwardingPipelineConfig(req)
        except grpc.RpcError as exc:
            raise PipelineError(self.name, "SetForwardingPipelineConfig failed: "
                                f"{_rpc_error(exc)}") from None
        self._set_p4info(p4info)

    def fetch_p4info(self) -> None:
        """Use the P4Info the switch already runs (e.g. after an agent restart)."""
        client = self._need_client()
        req = p4runtime_pb2.GetForwardingPipelineConfigRequest(
            device_id=self.device_id,
            response_type=p4runtime_pb2.GetForwardingPipelineConfigRequest.P4INFO_AND_COOKIE)
        try:
            rep = client.stub.GetForwardingPipelineConfig(req)
        except grpc.RpcError as exc:
            raise PipelineError(self.name, f"no pipeline on the switch: {_rpc_error(exc)}") from None
        if not rep.config.HasField("p4info") or not rep.config.p4info.tables:
            raise PipelineError(self.name, "no pipeline on the switch: it has no P4Info")
        self._set_p4info(rep.config.p4info)

    # -- P4Info lookups -------------------------------------------------
    def _obj(self, kind: P4Type, name: str):
        obj = self.ctx.get_obj(kind, name) if self.p4info is not None else None
        if obj is None:
            raise UnknownP4Name(self.name, f"no {kind.pretty_name} named {name!r} in the P4Info")
        return obj

    def _id(self, kind: P4Type, name: str) -> int:
        return self._obj(kind, name).preamble.id

    # -- entities -------------------------------------------------------
    def _action(self, name: str, params: dict[str, int] | None) -> p4runtime_pb2.Action:
        a = self._obj(P4Type.action, name)
        msg = p4runtime_pb2.Action(action_id=a.preamble.id)
        params = dict(params or {})
        for p in a.params:
            if p.name not in params:
                raise UnknownP4Name(self.name, f"action {name!r} needs parameter {p.name!r}")
            msg.params.add(param_id=p.id, value=_canonical(int(params.pop(p.name)), p.bitwidth))
        if params:
            raise UnknownP4Name(self.name, f"action {name!r} has no parameter(s) {sorted(params)}")
        return msg

    def table_entry(self, table: str, match: dict | None = None, *,
                    action: str | None = None, params: dict | None = None,
                    action_set: list[tuple[str, dict, int]] | None = None,
                    priority: int = 0, is_default: bool = False) -> p4runtime_pb2.TableEntry:
        """Build a TableEntry by names.

        ``match`` maps field name to: an int (exact), ``(value, prefix_len)``
        (lpm) or ``(value, mask)`` (ternary). Omitted lpm/ternary fields are
        wildcards. ``action_set`` is a one-shot action-selector set of
        ``(action, params, weight)``.
        """
        t = self._obj(P4Type.table, table)
        te = p4runtime_pb2.TableEntry(table_id=t.preamble.id, priority=priority,
                                      is_default_action=is_default)
        match = dict(match or {})
        for mf in t.match_fields:
            if mf.name not in match:
                continue
            v = match.pop(mf.name)
            fm = te.match.add(field_id=mf.id)
            kind = mf.match_type
            if kind == p4info_pb2.MatchField.EXACT:
                fm.exact.value = _canonical(int(v), mf.bitwidth)
            elif kind == p4info_pb2.MatchField.LPM:
                value, plen = v
                if plen == 0:   # P4Runtime: a /0 LPM is expressed by omitting the field
                    te.match.pop()
                    continue
                fm.lpm.value = _canonical(int(value), mf.bitwidth)
                fm.lpm.prefix_len = int(plen)
            elif kind == p4info_pb2.MatchField.TERNARY:
                value, mask = v
                if mask == 0:
                    te.match.pop()
                    continue
                fm.ternary.value = _canonical(int(value) & int(mask), mf.bitwidth)
                fm.ternary.mask = _canonical(int(mask), mf.bitwidth)
            else:
                raise UnknownP4Name(self.name, f"match kind {kind} of {mf.name!r} unsupported")
        if match:
            raise UnknownP4Name(self.name, f"table {table!r} has no match field(s) {sorted(match)}")
        if action is not None:
            te.action.action.CopyFrom(self._action(action, params))
        elif action_set is not None:
            for aname, aparams, weight in action_set:
                pa = te.action.action_profile_action_set.action_profile_actions.add()
                pa.action.CopyFrom(self._action(aname, aparams))
                pa.weight = int(weight)
        return te

    def entity_description(self, entity: p4runtime_pb2.Entity) -> str:
        kind = entity.WhichOneof("entity")
        if kind == "table_entry":
            te = entity.table_entry
            name = self.ctx.get_name_from_id(te.table_id) if self.p4info else te.table_id
            if te.is_default_action:
                return f"{name} default action"
            parts = []
            for m in te.match:
                which = m.WhichOneof("field_match_type")
                v = getattr(m, which)
                if which == "lpm":
                    parts.append(f"{_int(v.value):#x}/{v.prefix_len}")
                elif which == "ternary":
                    parts.append(f"{_int(v.value):#x}&&&{_int(v.mask):#x}")
                else:
                    parts.append(f"{_int(v.value):#x}")
            return f"{name}[{', '.join(parts) or '*'}]"
        return kind or "empty entity"

    # -- writes ---------------------------------------------------------
    def write(self, updates: list[tuple[int, object]]) -> None:
        """Apply ``[(INSERT|MODIFY|DELETE, entity), ...]`` in as few Write RPCs
        as possible. Raises :class:`WriteError` listing every failed update by
        its index in ``updates``."""
        client = self._need_client()
        failures: list[WriteFailure] = []
        for start in range(0, len(updates), MAX_BATCH):
            chunk = updates[start:start + MAX_BATCH]
            req = p4runtime_pb2.WriteRequest()
            client.stamp(req)
            for op, ent in chunk:
                u = req.updates.add(type=op)
                if isinstance(ent, p4runtime_pb2.TableEntry):
                    u.entity.table_entry.CopyFrom(ent)
                else:
                    u.entity.CopyFrom(ent)
            try:
                client.stub.Write(req)
            except grpc.RpcError as exc:
                errors = write_failures(exc) if exc.code() == grpc.StatusCode.UNKNOWN else None
                if errors is None:
                    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                        raise SwitchConnectionError(
                            self.name, f"Write failed: {exc.code().name} {exc.details()}") from None
                    failures += [WriteFailure(start + i, _OP_NAMES.get(op, "?"),
                                              self.entity_description(req.updates[i].entity),
                                              exc.code().name, exc.details() or "")
                                 for i, (op, _e) in enumerate(chunk)]
                    continue
                for idx, err in errors:
                    failures.append(WriteFailure(
                        start + idx, _OP_NAMES.get(chunk[idx][0], "?"),
                        self.entity_description(req.updates[idx].entity),
                        code_pb2.Code.Name(err.canonical_code), err.message))
        if failures:
            raise WriteError(self.name, failures, len(updates))

    def insert(self, entities) -> None:
        self.write([(INSERT, e) for e in entities])

    def modify(self, entities) -> None:
        self.write([(MODIFY, e) for e in entities])

    def delete(self, entities) -> None:
        self.write([(DELETE, e) for e in entities])

    # -- reads ----------------------------------------------------------
    def read(self, entity) -> list[p4runtime_pb2.Entity]:
        """The entities matching ``entity`` (or each of a list of them: one
        Read RPC either way)."""
        client = self._need_client()
        out = []
        try:
            req = p4runtime_pb2.ReadRequest(device_id=self.device_id)
            if self.role_name is not None:
                req.role = self.role_name
            if isinstance(entity, p4runtime_pb2.Entity):
                req.entities.append(entity)
            else:
                req.entities.extend(entity)
            for rep in client.stub.Read(req):
                out.extend(rep.entities)
        except grpc.RpcError as exc:
            raise ReadError(self.name, f"Read failed: {_rpc_error(exc)}") from None
        return out

    def read_table(self, table: str) -> list[p4runtime_pb2.TableEntry]:
        ent = p4runtime_pb2.Entity()
        ent.table_entry.table_id = self._id(P4Type.table, table)
        return [e.table_entry for e in self.read(ent)]

    def read_counter(self, counter: str, index: int | None = None) -> dict[int, tuple[int, int]]:
        """{index: (packets, bytes)} for one cell or, with no index, all cells."""
        ent = p4runtime_pb2.Entity()
        ent.counter_entry.counter_id = self._id(P4Type.counter, counter)
        if index is not None:
            ent.counter_entry.index.index = index
        return {e.counter_entry.index.index: (e.counter_entry.data.packet_count,
                                              e.counter_entry.data.byte_count)
                for e in self.read(ent)}

    def read_counter_cells(self, counter: str, indices) -> dict[int, int]:
        """{index: packets} of the named cells of one counter, in one Read RPC."""
        cid = self._id(P4Type.counter, counter)
        ents = []
        for i in indices:
            ent = p4runtime_pb2.Entity()
            ent.counter_entry.counter_id = cid
            ent.counter_entry.index.index = i
            ents.append(ent)
        if not ents:
            return {}
        return {e.counter_entry.index.index: e.counter_entry.data.packet_count
                for e in self.read(ents)}

    def meter_entry(self, meter: str, index: int, rate: int, burst: int) -> p4runtime_pb2.Entity:
        """An indexed meter cell's configuration: ``rate`` units per second and
        ``burst`` units, as both the committed and the peak rate (a frame over
        them is red)."""
        ent = p4runtime_pb2.Entity()
        me = ent.meter_entry
        me.meter_id = self._id(P4Type.meter, meter)
        me.index.index = index
        me.config.cir, me.config.cburst = rate, burst
        me.config.pir, me.config.pburst = rate, burst
        return ent

    def read_meter(self, meter: str, index: int) -> tuple[int, int, int, int] | None:
        """(cir, cburst, pir, pburst) of one cell, or None when unconfigured."""
        ent = p4runtime_pb2.Entity()
        ent.meter_entry.meter_id = self._id(P4Type.meter, meter)
        ent.meter_entry.index.index = index
        for e in self.read(ent):
            if e.meter_entry.HasField("config"):
                c = e.meter_entry.config
                return c.cir, c.cburst, c.pir, c.pburst
        return None

    def read_direct_counters(self, table: str) -> list[tuple[p4runtime_pb2.TableEntry, int, int]]:
        """(entry, packets, bytes) for every entry of ``table``."""
        ent = p4runtime_pb2.Entity()
        ent.direct_counter_entry.table_entry.table_id = self._id(P4Type.table, table)
        return [(e.direct_counter_entry.table_entry,
                 e.direct_counter_entry.data.packet_count,
                 e.direct_counter_entry.data.byte_count) for e in self.read(ent)]

    def decode_entry(self, te: p4runtime_pb2.TableEntry) -> dict:
        """A TableEntry as plain data: names instead of ids, ints instead of bytes."""
        t = self.ctx.get_obj_by_id(te.table_id)
        out = {"table": t.preamble.name, "match": {}, "priority": te.priority}
        for m in te.match:
            name = self.ctx.get_mf_name(t.preamble.name, m.field_id)
            which = m.WhichOneof("field_match_type")
            v = getattr(m, which)
            if which == "lpm":
                out["match"][name] = (_int(v.value), v.prefix_len)
            elif which == "ternary":
                out["match"][name] = (_int(v.value), _int(v.mask))
            else:
                out["match"][name] = _int(v.value)

        def action(a):
            aname = self.ctx.get_name_from_id(a.action_id)
            return aname, {self.ctx.get_param_name(aname, p.param_id): _int(p.value)
                           for p in a.params}

        kind = te.action.WhichOneof("type")
        if kind == "action":
            out["action"] = action(te.action.action)
        elif kind == "action_profile_action_set":
            out["action_set"] = [(*action(pa.action), pa.weight)
                                 for pa in te.action.action_profile_action_set.action_profile_actions]
        return out

    # -- stream channel -------------------------------------------------
    def _packet_metadata(self, header: str):
        """(ControllerPacketMetadata, {id: name}) of ``header``, cached per P4Info."""
        got = self._packet_md.get(header)
        if got is None:
            cpm = self.ctx.get_obj(P4Type.controller_packet_metadata, header) \
                if self.p4info is not None else None
            if cpm is None:
                raise UnknownP4Name(self.name, f"no controller header {header!r} in the P4Info")
            got = self._packet_md[header] = (cpm, {md.id: md.name for md in cpm.metadata})
        return got

    def packet_out(self, payload: bytes, **metadata: int) -> None:
        """Send a frame through the switch; metadata names the packet_out fields
        (e.g. ``egress_port=2``, or ``flags=PKTOUT_ROUTE``); missing ones are 0."""
        client = self._need_client()
        cpm = self._packet_metadata("packet_out")[0]
        msg = p4runtime_pb2.StreamMessageRequest()
        msg.packet.payload = payload
        for md in cpm.metadata:
            msg.packet.metadata.add(metadata_id=md.id,
                                    value=_canonical(int(metadata.pop(md.name, 0)), md.bitwidth))
        if metadata:
            raise UnknownP4Name(self.name, f"packet_out has no field(s) {sorted(metadata)}")
        client.stream_out_q.put(msg)

    def wake(self) -> None:
        """Make a :meth:`packet_in` waiting in another thread return None now
        (a thread that changed state the waiting loop must act on)."""
        if self.client is not None:
            self.client.packet_q.put(_WAKE)

    def packet_in(self, timeout: float = 1.0) -> PacketIn | None:
        """The next packet-in, or None when ``timeout`` passes or
        :meth:`wake` is called. Raises :class:`SwitchConnectionError` once the
        stream is gone."""
        client = self._need_client()
        if self._stream_closed:
            raise SwitchConnectionError(self.name, "stream channel closed")
        try:
            msg = client.packet_q.get(timeout=timeout)
        except queue.Empty:
            return None
        if msg is _WAKE:
            return None
        if msg is None:
            self._stream_closed = True
            raise SwitchConnectionError(self.name, "stream channel closed")
        names = self._packet_metadata("packet_in")[1]
        return PacketIn(msg.payload,
                        {names.get(m.metadata_id, str(m.metadata_id)): _int(m.value)
                         for m in msg.metadata})
