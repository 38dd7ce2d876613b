"""The pod process: one per Mininet host, serving one or more service instances.

It answers, on its one interface:
* REQUEST to a name it serves -> RESPONSE (RMI-style: method + JSON args);
  an instance ``/B/4`` serves requests to ``/B/4`` itself, to names below it
  (``/B/4/cart``) and to the service prefix above it (``/B``, anycast);
* REQUEST to a name it does not serve, or an unknown method -> ERROR;
* PROBE -> PROBE_REPLY with the forward-path records echoed in a TLV.
Anything else is counted and dropped; a malformed frame never stops the pod.
On SIGTERM/SIGINT it writes its counters to the log and exits 0.

Run it as ``python -m traffic.pod --iface pod4-eth0 --instance /B/4 --instance /A/4``.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import signal
import sys
import time

from traffic.wire import codec, defs, layers, names
from traffic.wire.link import RawLink

log = logging.getLogger("dmsc.pod")


def _echo(instance, args):
    return args


def _whoami(instance, args):
    return {"instance": instance}


def _add(instance, args):
    return {"sum": sum(args.get("values", []))}


METHODS = {"echo": _echo, "whoami": _whoami, "add": _add}


class Pod:
    def __init__(self, iface: str, instances: list[str], *, mac: str = "00:00:00:00:00:00",
                 gateway_mac: str = codec.BROADCAST):
        self.iface = iface
        self.instances = [names.normalize(i) for i in instances]
        self.mac = mac
        self.gateway_mac = gateway_mac
        self.counters = collections.Counter()

    def serving(self, name: str) -> str | None:
        """The instance that serves ``name``, if any."""
        for inst in self.instances:
            if names.prefix_matches(name, inst) or names.prefix_matches(inst, name):
                return inst
        return None

    def handle(self, raw: bytes) -> bytes | None:
        """One received frame in, the reply frame (bytes) or None out."""
        try:
            pkt = layers.parse(raw)
        except Exception as exc:           # garbage on the wire: count, go on
            self.counters["rx_malformed"] += 1
            log.warning("dropped malformed frame (%d bytes): %s", len(raw), exc)
            return None
        kw = {"eth_src": self.mac, "eth_dst": self.gateway_mac}
        if pkt.type == defs.TYPE_REQUEST:
            self.counters["rx_request"] += 1
            return bytes(self._request(pkt, kw))
        if pkt.type == defs.TYPE_PROBE:
            self.counters["rx_probe"] += 1
            inst = self.serving(pkt.dst_name or "") or self.instances[0]
            return bytes(layers.probe_reply(pkt, inst, **kw))
        self.counters[f"rx_ignored_{defs.TYPE_NAMES.get(pkt.type, pkt.type)}"] += 1
        return None

    def _request(self, pkt: layers.DMSC, kw) -> bytes:
        dst = pkt.dst_name
        src = pkt.src_name
        me = self.instances[0]
        if dst is None or src is None:
            self.counters["tx_error_bad_request"] += 1
            return layers.error(pkt, me, codec.STATUS_BAD_REQUEST, "missing name TLV", **kw)
        try:
            key_ok = names.name_key(dst) == pkt.dst_key
        except names.InvalidName as exc:
            self.counters["tx_error_bad_request"] += 1
            return layers.error(pkt, me, codec.STATUS_BAD_REQUEST, str(exc), **kw)
        if not key_ok:
            self.counters["tx_error_bad_request"] += 1
            return layers.error(pkt, me, codec.STATUS_BAD_REQUEST,
                              f"dst_key does not match name {dst!r}", **kw)
        inst = self.serving(dst)
        if inst is None:
            self.counters["tx_error_unknown_name"] += 1
            return layers.error(pkt, me, codec.STATUS_UNKNOWN_NAME,
                              f"{dst} is not served here", **kw)
        method = pkt.text(codec.TLV_METHOD, "")
        fn = METHODS.get(method)
        if fn is None:
            self.counters["tx_error_unknown_method"] += 1
            return layers.error(pkt, inst, codec.STATUS_UNKNOWN_METHOD,
                              f"no method {method!r}", **kw)
        try:
            args = json.loads(pkt.tlv(codec.TLV_BODY, b"null") or b"null")
            result = fn(inst, args if args is not None else {})
        except Exception as exc:           # the service's own error: answered, counted, logged
            self.counters["tx_error_app"] += 1
            log.info("%s %s() raised %s: %s", inst, method, type(exc).__name__, exc)
            return layers.error(pkt, inst, codec.STATUS_APP_ERROR,
                              f"{type(exc).__name__}: {exc}", **kw)
        self.counters["tx_response"] += 1
        return layers.response(pkt, inst, result, **kw)

    def serve(self, duration: float | None = None) -> None:
        stop = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.append(True))
        deadline = None if duration is None else time.monotonic() + duration
        with RawLink(self.iface) as link:
            log.info("pod on %s serving %s", self.iface, ", ".join(self.instances))
            while not stop and (deadline is None or time.monotonic() < deadline):
                raw = link.recv(0.2)
                if raw is None:
                    continue
                reply = self.handle(raw)
                if reply is not None:
                    link.send(reply)
        log.info("pod stopping; counters %s", json.dumps(dict(self.counters), sort_keys=True))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iface", required=True)
    ap.add_argument("--instance", action="append", required=True,
                    help="service instance name served here, e.g. /B/4 (repeatable)")
    ap.add_argument("--mac", default="00:00:00:00:00:00")
    ap.add_argument("--gateway-mac", default=codec.BROADCAST)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        pod = Pod(args.iface, args.instance, mac=args.mac, gateway_mac=args.gateway_mac)
    except names.InvalidName as exc:
        print(f"pod: {exc}", file=sys.stderr)
        return 2
    pod.serve(args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
