"""The one P4Runtime adapter: nothing else in the project speaks P4Runtime.

One :class:`SwitchConnection` per switch, each with its own p4runtime-shell
``P4RuntimeClient`` and its own P4Info index (``p4runtime_sh.context.Context``),
never p4runtime-shell's module-global ``setup()``, so one process can drive
many switches. It offers what the control plane needs:

* connect + arbitration (:meth:`SwitchConnection.connect`), pipeline push
  (:meth:`SwitchConnection.set_pipeline`);
* building entities by P4Info name (:meth:`SwitchConnection.table_entry`, ...) and
  decoding them back (:meth:`SwitchConnection.decode_entry`);
* batched writes (:meth:`SwitchConnection.write`: many inserts/modifies/deletes in one
  Write RPC), reads, counter and direct-counter reads;
* the stream channel: :meth:`SwitchConnection.packet_out`, :meth:`SwitchConnection.packet_in`.

Every failure is a :class:`SwitchError` subclass saying which switch, which
update of a batch and why. Nothing here prints or exits the process: the
client's ``sys.exit`` paths (handshake) are replaced by exceptions.
"""
from __future__ import annotations

import logging
import queue
from dataclasses import dataclass, field

import grpc
from google.rpc import code_pb2
from p4.v1 import p4runtime_pb2
from p4.config.v1 import p4info_pb2
from google.protobuf import text_format

from google.rpc import status_pb2
from p4runtime_sh.context import Context, P4Type
from p4runtime_sh.p4runtime import P4RuntimeClient, P4RuntimeException

log = logging.getLogger("dmsc.p4rt")

INSERT = p4runtime_pb2.Update.INSERT
MODIFY = p4runtime_pb2.Update.MODIFY
DELETE = p4runtime_pb2.Update.DELETE
_OP_NAMES = {INSERT: "INSERT", MODIFY: "MODIFY", DELETE: "DELETE"}

# Updates per Write RPC: large enough to amortise the RPC, small enough to stay
# far below gRPC's 4 MB message limit with our entry sizes (~100 bytes).
MAX_BATCH = 2000


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


class _Client(P4RuntimeClient):
    """p4runtime-shell's client with a handshake that raises instead of exiting."""

    handshake_timeout = 3.0

    def __init__(self, *args, **kwargs):
        self.is_primary = False
        self.handshake_error = None
        super().__init__(*args, **kwargs)

    def handshake(self):
        req = p4runtime_pb2.StreamMessageRequest()
        req.arbitration.device_id = self.device_id
        req.arbitration.election_id.high = self.election_id[0]
        req.arbitration.election_id.low = self.election_id[1]
        if self.role_name is not None:
            req.arbitration.role.name = self.role_name
        self.stream_out_q.put(req)
        rep = self.get_stream_packet("arbitration", timeout=self.handshake_timeout)
        if rep is None:
            self.handshake_error = "no arbitration reply (is the switch up?)"
            return
        self.is_primary = rep.arbitration.status.code == code_pb2.OK

    def write_raw(self, req: p4runtime_pb2.WriteRequest) -> None:
        """Write without p4runtime-shell's error parsing: its iterator never
        advances past an OK detail, so a batch whose first update succeeded and
        a later one failed (BMv2 reports every update) loops forever. Raises
        grpc.RpcError; :func:`write_failures` reads the per-update errors."""
        req.device_id = self.device_id
        if self.role_name is not None:
            req.role = self.role_name
        req.election_id.high = self.election_id[0]
        req.election_id.low = self.election_id[1]
        self.stub.Write(req)


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
        self.client: _Client | None = None
        self.ctx = Context()
        self.p4info: p4info_pb2.P4Info | None = None
        self._stream_closed = False

    # -- session --------------------------------------------------------
    def connect(self, p4info_path: str | None = None, *, require_primary: bool = True,
                timeout: float = 3.0) -> "SwitchConnection":
        if not self._wait_channel(timeout):
            raise SwitchConnectionError(self.name, f"no P4Runtime server at {self.grpc_addr}")
        _Client.handshake_timeout = timeout
        try:
            client = _Client(self.device_id, self.grpc_addr, self.election_id,
                             role_name=self.role_name)
        except SystemExit as exc:   # p4runtime-shell exits on some channel errors
            raise SwitchConnectionError(self.name, f"client exited ({exc})") from None
        if client.handshake_error:
            client.tear_down()
            raise SwitchConnectionError(self.name, client.handshake_error)
        self.client = client
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

    def _need_client(self) -> _Client:
        if self.client is None:
            raise SwitchConnectionError(self.name, "not connected")
        return self.client

    # -- pipeline -------------------------------------------------------
    def load_p4info(self, p4info_path: str) -> None:
        self._set_p4info(load_p4info(p4info_path))

    def _set_p4info(self, p4info) -> None:
        self.p4info = p4info
        self.ctx = Context()
        self.ctx.set_p4info(p4info)

    def set_pipeline(self, p4info_path: str, bmv2_json_path: str) -> None:
        client = self._need_client()
        try:
            client.set_fwd_pipe_config(p4info_path, bmv2_json_path)
        except (P4RuntimeException, OSError) as exc:
            raise PipelineError(self.name, f"SetForwardingPipelineConfig failed: {exc}") from None
        self.load_p4info(p4info_path)

    def fetch_p4info(self) -> None:
        """Use the P4Info the switch already runs (e.g. after an agent restart)."""
        try:
            self._set_p4info(self._need_client().get_p4info())
        except P4RuntimeException as exc:
            raise PipelineError(self.name, f"no pipeline on the switch: {exc}") from None

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
            for op, ent in chunk:
                u = req.updates.add(type=op)
                if isinstance(ent, p4runtime_pb2.TableEntry):
                    u.entity.table_entry.CopyFrom(ent)
                else:
                    u.entity.CopyFrom(ent)
            try:
                client.write_raw(req)
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
    def read(self, entity: p4runtime_pb2.Entity) -> list[p4runtime_pb2.Entity]:
        client = self._need_client()
        out = []
        try:
            for rep in client.read_one(entity):
                out.extend(rep.entities)
        except (P4RuntimeException, grpc.RpcError) as exc:
            raise ReadError(self.name, f"Read failed: {exc}") from None
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
        for cpm in self.p4info.controller_packet_metadata:
            if cpm.preamble.name == header:
                return cpm
        raise UnknownP4Name(self.name, f"no controller header {header!r} in the P4Info")

    def packet_out(self, payload: bytes, **metadata: int) -> None:
        """Send a frame through the switch; metadata names the packet_out fields
        (e.g. ``egress_port=2``, or ``flags=PKTOUT_ROUTE``); missing ones are 0."""
        client = self._need_client()
        cpm = self._packet_metadata("packet_out")
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
            self.client.stream_in_q["packet"].put(_WAKE)

    def packet_in(self, timeout: float = 1.0) -> PacketIn | None:
        """The next packet-in, or None when ``timeout`` passes or
        :meth:`wake` is called. Raises :class:`SwitchConnectionError` once the
        stream is gone."""
        client = self._need_client()
        if self._stream_closed:
            raise SwitchConnectionError(self.name, "stream channel closed")
        try:
            msg = client.stream_in_q["packet"].get(timeout=timeout)
        except queue.Empty:
            return None
        if msg is _WAKE:
            return None
        if msg is None:
            self._stream_closed = True
            raise SwitchConnectionError(self.name, "stream channel closed")
        cpm = self._packet_metadata("packet_in")
        names = {md.id: md.name for md in cpm.metadata}
        return PacketIn(msg.packet.payload,
                        {names.get(m.metadata_id, str(m.metadata_id)): _int(m.value)
                         for m in msg.packet.metadata})
