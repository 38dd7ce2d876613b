"""An in-process fake P4Runtime server, as p4runtime-shell's own test.py uses.

It keeps written entities in a list (no P4 semantics beyond insert / modify /
delete by match key), answers reads from it, can be told to fail chosen
updates of the next Write with a per-update p4.Error, records packet-outs and
can push packet-ins. Good enough to check what the adapter puts on the wire.
"""
from __future__ import annotations

import queue
import threading
from concurrent import futures

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2
from controller.switch.p4runtime.p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc


def _key(entity: p4runtime_pb2.Entity):
    e = p4runtime_pb2.Entity()
    e.CopyFrom(entity)
    kind = e.WhichOneof("entity")
    if kind == "table_entry":
        e.table_entry.ClearField("action")
        e.table_entry.ClearField("counter_data")
    elif kind == "meter_entry":
        e.meter_entry.ClearField("config")
    return e.SerializeToString(deterministic=True)


def _indexed(entity: p4runtime_pb2.Entity) -> bool:
    """A cell of an indexed extern (a meter): always there, only ever modified."""
    return entity.WhichOneof("entity") == "meter_entry"


class FakeP4Runtime(p4runtime_pb2_grpc.P4RuntimeServicer):
    def __init__(self):
        self.config = None
        self.write_requests: list[p4runtime_pb2.WriteRequest] = []
        self.store: dict[bytes, p4runtime_pb2.Entity] = {}
        self.fail_next: dict[int, tuple[int, str]] = {}   # update index -> (code, message)
        self.counters: list[p4runtime_pb2.Entity] = []
        self.packet_outs: "queue.Queue[p4runtime_pb2.PacketOut]" = queue.Queue()
        self._streams: list[queue.Queue] = []
        self.highest_election = (0, 0)
        self.lock = threading.Lock()

    # -- unary RPCs --------------------------------------------------------
    def Capabilities(self, request, context):
        return p4runtime_pb2.CapabilitiesResponse(p4runtime_api_version="1.4.1")

    def SetForwardingPipelineConfig(self, request, context):
        self.config = request.config
        self.store.clear()
        return p4runtime_pb2.SetForwardingPipelineConfigResponse()

    def GetForwardingPipelineConfig(self, request, context):
        if self.config is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no pipeline")
        return p4runtime_pb2.GetForwardingPipelineConfigResponse(config=self.config)

    def Write(self, request, context):
        with self.lock:
            self.write_requests.append(request)
            fail, self.fail_next = self.fail_next, {}
            errors = []
            for i, u in enumerate(request.updates):
                if i in fail:
                    errors.append(p4runtime_pb2.Error(canonical_code=fail[i][0], message=fail[i][1]))
                    continue
                k = _key(u.entity)
                if u.type == p4runtime_pb2.Update.INSERT and k in self.store:
                    errors.append(p4runtime_pb2.Error(canonical_code=code_pb2.ALREADY_EXISTS,
                                                      message="entry exists"))
                    continue
                if _indexed(u.entity) and u.type != p4runtime_pb2.Update.MODIFY:
                    errors.append(p4runtime_pb2.Error(canonical_code=code_pb2.INVALID_ARGUMENT,
                                                      message="meter cells are only modified"))
                    continue
                if u.type in (p4runtime_pb2.Update.MODIFY, p4runtime_pb2.Update.DELETE) \
                        and k not in self.store and not u.entity.table_entry.is_default_action \
                        and not _indexed(u.entity):
                    errors.append(p4runtime_pb2.Error(canonical_code=code_pb2.NOT_FOUND,
                                                      message="no such entry"))
                    continue
                if u.type == p4runtime_pb2.Update.DELETE:
                    del self.store[k]
                else:
                    self.store[k] = u.entity
                errors.append(p4runtime_pb2.Error(canonical_code=code_pb2.OK))
            if any(e.canonical_code != code_pb2.OK for e in errors):
                status = status_pb2.Status(code=code_pb2.UNKNOWN, message="write failed")
                for e in errors:
                    a = any_pb2.Any()
                    a.Pack(e)
                    status.details.append(a)
                context.set_trailing_metadata(
                    (("grpc-status-details-bin", status.SerializeToString()),))
                context.set_code(grpc.StatusCode.UNKNOWN)
                context.set_details("write failed")
            return p4runtime_pb2.WriteResponse()

    def Read(self, request, context):
        want = request.entities[0]
        kind = want.WhichOneof("entity")
        out = []
        if kind == "table_entry":
            out = [e for e in self.store.values()
                   if e.WhichOneof("entity") == "table_entry"
                   and e.table_entry.table_id == want.table_entry.table_id
                   and not e.table_entry.is_default_action]
        elif kind == "meter_entry":
            out = [e for e in self.store.values() if e.WhichOneof("entity") == "meter_entry"
                   and e.meter_entry.meter_id == want.meter_entry.meter_id
                   and (not want.meter_entry.HasField("index")
                        or e.meter_entry.index.index == want.meter_entry.index.index)]
        elif kind == "counter_entry":
            out = [e for e in self.counters
                   if e.WhichOneof("entity") == "counter_entry"
                   and e.counter_entry.counter_id == want.counter_entry.counter_id]
        elif kind == "direct_counter_entry":
            out = [e for e in self.counters if e.WhichOneof("entity") == "direct_counter_entry"
                   and e.direct_counter_entry.table_entry.table_id
                   == want.direct_counter_entry.table_entry.table_id]
        yield p4runtime_pb2.ReadResponse(entities=out)

    # -- stream --------------------------------------------------------------
    def StreamChannel(self, request_iterator, context):
        out: queue.Queue = queue.Queue()
        self._streams.append(out)

        def reader():
            try:
                self._read_stream(request_iterator, out)
            except grpc.RpcError:      # the client went, or the server is stopping
                pass
            out.put(None)

        threading.Thread(target=reader, daemon=True).start()
        while True:
            msg = out.get()
            if msg is None:
                return
            yield msg

    def _read_stream(self, request_iterator, out: queue.Queue) -> None:
        for req in request_iterator:
            which = req.WhichOneof("update")
            if which == "arbitration":
                eid = (req.arbitration.election_id.high, req.arbitration.election_id.low)
                rep = p4runtime_pb2.StreamMessageResponse()
                rep.arbitration.CopyFrom(req.arbitration)
                if eid >= self.highest_election:
                    self.highest_election = eid
                    rep.arbitration.status.code = code_pb2.OK
                else:
                    rep.arbitration.status.code = code_pb2.ALREADY_EXISTS
                out.put(rep)
            elif which == "packet":
                self.packet_outs.put(req.packet)

    def send_packet_in(self, payload: bytes, metadata: dict[int, bytes]) -> None:
        rep = p4runtime_pb2.StreamMessageResponse()
        rep.packet.payload = payload
        for mid, val in metadata.items():
            rep.packet.metadata.add(metadata_id=mid, value=val)
        for q in self._streams:
            q.put(rep)


class FakeServer:
    """``with FakeServer() as (fake, addr): ...`` on 127.0.0.1, a free port."""

    def __enter__(self):
        self.fake = FakeP4Runtime()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        p4runtime_pb2_grpc.add_P4RuntimeServicer_to_server(self.fake, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self.fake, f"127.0.0.1:{port}"

    def __exit__(self, *exc):
        for q in self.fake._streams:
            q.put(None)
        self.server.stop(grace=None)
