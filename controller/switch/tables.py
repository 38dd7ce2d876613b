"""Switch tables from routing state: the base configuration and the FIB.

The FIB is held as ``{(key, prefix_len): Route}``. :meth:`Fib.sync` reads what
the switch holds, computes the diff against what routing wants (insert,
modify, delete) and writes it in batched Write RPCs through the adapter, so an
unchanged route costs nothing and a stale one cannot survive a sync. Each
route is one FIB entry with a one-shot action-selector set: one member per
equal-cost next hop (ECMP), or a single punt/drop action.
"""
from __future__ import annotations

from controller.switch import p4names as N
from traffic.wire import defs
from controller.switch.p4rt import DELETE, INSERT, MODIFY, SwitchConnection
from controller.routing.route import DROP, PUNT, Route
from topologies.topo import Copp, NextHop
from traffic.wire import names


def mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def mac_str(value: int) -> str:
    return ":".join(f"{value:012x}"[i:i + 2] for i in range(0, 12, 2))


def base_entries(sw: SwitchConnection, switch_id: int, ports: dict[int, tuple[str, str]]):
    """Updates that configure a freshly pipelined switch: the id written into
    probe records, and for every port its role ('pod'/'core') and MAC; which
    ports are core-facing (every other port gets the source-name check and the
    punt meters), with the policy stage off."""
    ups = [(MODIFY, sw.table_entry(N.TABLE_SWITCH_CONFIG, action=N.ACTION_SET_SWITCH_ID,
                                   params={N.PARAM_SET_SWITCH_ID_SWITCH_ID: switch_id},
                                   is_default=True))]
    ups += policy_stage(sw, False, core_ports(ports))
    for port, (role, mac) in sorted(ports.items()):
        ups.append((INSERT, sw.table_entry(
            N.TABLE_PORT_ROLE, {N.MATCH_PORT_ROLE_PORT: port}, action=N.ACTION_SET_ROLE,
            params={N.PARAM_SET_ROLE_ROLE: defs.ROLE_CORE if role == "core" else defs.ROLE_POD})))
        ups.append((INSERT, sw.table_entry(
            N.TABLE_PORT_MAC, {N.MATCH_PORT_MAC_PORT: port}, action=N.ACTION_SET_SRC_MAC,
            params={N.PARAM_SET_SRC_MAC_SMAC: mac_int(mac)})))
    return ups


class Fib:
    """One switch's FIB, read and written through its adapter."""

    def __init__(self, sw: SwitchConnection):
        self.sw = sw

    def entry(self, key: int, plen: int, route: Route):
        if route.special == PUNT:
            aset = [(N.ACTION_PUNT_LOCAL, {}, 1)]
        elif route.special == DROP:
            aset = [(N.ACTION_DROP_ROUTE, {}, 1)]
        else:
            if not route.hops:
                raise ValueError(f"route for {names.format_key(key, plen)} has no next hop")
            aset = [(N.ACTION_SET_NEXT_HOP,
                     {N.PARAM_SET_NEXT_HOP_PORT: h.port,
                      N.PARAM_SET_NEXT_HOP_DMAC: mac_int(h.mac)}, 1)
                    for h in sorted(route.hops)]
        return self.sw.table_entry(N.TABLE_FIB, {N.MATCH_FIB_DST_KEY: (key, plen)},
                                   action_set=aset)

    def _route_of(self, decoded: dict) -> Route:
        hops, special = set(), None
        for action, params, _weight in decoded.get("action_set", []):
            if action == N.ACTION_PUNT_LOCAL:
                special = PUNT
            elif action == N.ACTION_DROP_ROUTE:
                special = DROP
            else:
                hops.add(NextHop(params[N.PARAM_SET_NEXT_HOP_PORT],
                             mac_str(params[N.PARAM_SET_NEXT_HOP_DMAC])))
        return Route(frozenset(hops), special)

    def read(self) -> dict[tuple[int, int], Route]:
        out = {}
        for te in self.sw.read_table(N.TABLE_FIB):
            d = self.sw.decode_entry(te)
            out[d["match"].get(N.MATCH_FIB_DST_KEY, (0, 0))] = self._route_of(d)
        return out

    def diff(self, current: dict, desired: dict) -> list:
        ups = []
        for k, route in desired.items():
            if k not in current:
                ups.append((INSERT, self.entry(*k, route)))
            elif current[k] != route:
                ups.append((MODIFY, self.entry(*k, route)))
        for k, route in current.items():
            if k not in desired:
                ups.append((DELETE, self.entry(*k, route)))
        return ups

    def sync(self, desired_by_prefix: dict[str, Route]) -> dict[str, int]:
        """Make the switch's FIB equal ``{prefix: Route}``; returns the counts of
        inserted, modified and deleted entries."""
        desired = {names.prefix_key(p): r for p, r in desired_by_prefix.items()}
        ups = self.diff(self.read(), desired)
        self.sw.write(ups)
        counts = {"insert": 0, "modify": 0, "delete": 0}
        for op, _ in ups:
            counts[{INSERT: "insert", MODIFY: "modify", DELETE: "delete"}[op]] += 1
        return counts

    def counters(self) -> dict[tuple[int, int], tuple[int, int]]:
        """{(key, plen): (packets, bytes)} from the FIB's direct counter."""
        out = {}
        for te, pkts, byts in self.sw.read_direct_counters(N.TABLE_FIB):
            d = self.sw.decode_entry(te)
            out[d["match"].get(N.MATCH_FIB_DST_KEY, (0, 0))] = (pkts, byts)
        return out


def core_ports(ports: dict[int, tuple[str, str]]) -> list[int]:
    """The core-facing ports of {port: (role, mac)}."""
    return sorted(p for p, (role, _mac) in ports.items() if role == "core")


def core_mask(core) -> int:
    """The ``core_ports`` bit mask of ingress_config: bit p for core port p < 128
    (ports from 128 up are pod ports in the P4 program whatever the mask says)."""
    mask = 0
    for p in core:
        if p >= 128:
            raise ValueError(f"core port {p}: the program's mask holds ports 0-127")
        mask |= 1 << p
    return mask


def policy_stage(sw: SwitchConnection, on: bool, core) -> list:
    """The update that turns the switch's SCSC policy stage on or off, as a
    one-element list: the ingress_config default, which also names the core
    ports (every other port is a pod port: sources checked, punts metered). Off
    (the pipeline's default), frames skip the policy table: the writer of
    policies turns it on with the first entry and off with the last."""
    return [(MODIFY, sw.table_entry(
        N.TABLE_INGRESS_CONFIG, action=N.ACTION_SET_INGRESS_CONFIG,
        params={N.PARAM_SET_INGRESS_CONFIG_POLICY_STAGE: int(on),
                N.PARAM_SET_INGRESS_CONFIG_CORE_PORTS: core_mask(core)},
        is_default=True))]


def copp_updates(sw: SwitchConnection, copp: Copp, pod_ports) -> list:
    """MODIFY updates configuring both CoPP meters (p4src/main.p4) of every pod
    port: announcements, and every other punt."""
    ups = []
    for port in sorted(pod_ports):
        ups.append((MODIFY, sw.meter_entry(N.METER_ANNOUNCE_METER, port,
                                           copp.announce_pps, copp.announce_burst)))
        ups.append((MODIFY, sw.meter_entry(N.METER_PUNT_METER, port,
                                           copp.punt_pps, copp.punt_burst)))
    return ups


class SourceGuard:
    """The SG's source-name table (p4src/controls/source.p4): which source
    prefixes each pod port may use, as {(port, key, prefix_len)}."""

    def __init__(self, sw: SwitchConnection):
        self.sw = sw

    @staticmethod
    def wanted(held) -> set[tuple[int, int, int]]:
        """{(port, key, plen)} for [(prefix, port)] a gateway holds."""
        return {(port, *names.prefix_key(prefix)) for prefix, port in held}

    def entry(self, port: int, key: int, plen: int):
        return self.sw.table_entry(N.TABLE_SRC_GUARD, {N.MATCH_SRC_GUARD_PORT: port,
                                                       N.MATCH_SRC_GUARD_SRC_KEY: (key, plen)},
                                   action=N.ACTION_SRC_HELD)

    def read(self) -> set[tuple[int, int, int]]:
        out = set()
        for te in self.sw.read_table(N.TABLE_SRC_GUARD):
            m = self.sw.decode_entry(te)["match"]
            out.add((m[N.MATCH_SRC_GUARD_PORT], *m.get(N.MATCH_SRC_GUARD_SRC_KEY, (0, 0))))
        return out

    def diff(self, current: set, desired: set) -> list:
        return ([(INSERT, self.entry(*k)) for k in sorted(desired - current)]
                + [(DELETE, self.entry(*k)) for k in sorted(current - desired)])


def policy_entry(sw: SwitchConnection, dst: tuple[int, int], src: tuple[int, int],
                 port: int, mac: str, priority: int):
    """An SCSC policy: frames whose dst_key matches ``dst`` and src_key matches
    ``src`` (each (value, mask), ternary) leave on ``port`` towards ``mac``,
    ahead of the FIB."""
    return sw.table_entry(N.TABLE_POLICY, {N.MATCH_POLICY_DST_KEY: dst,
                                           N.MATCH_POLICY_SRC_KEY: src},
                          action=N.ACTION_POLICY_FORWARD,
                          params={N.PARAM_POLICY_FORWARD_PORT: port,
                                  N.PARAM_POLICY_FORWARD_DMAC: mac_int(mac)},
                          priority=priority)
