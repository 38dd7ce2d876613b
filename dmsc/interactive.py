"""The interactive CLI of a running network: Mininet's, with DMSC commands.

``dmsc up --cli`` (and ``dmsc demo --keep``) leaves the user at a ``dmsc>``
prompt that still has every Mininet command (``pod1 ip link``, ``nodes``,
``py``...) and adds the testbed's own:

    fib|lsdb|rib|policy SWITCH     a switch's tables, its agent's state
    stats SWITCH                   per-port kernel and P4 counters: every loss
    scsc                           the SCSC's decisions
    call POD DST [METHOD]          a call by name from a pod
    probe POD DST                  a probe with its per-hop records
    announce|withdraw POD PREFIX   a pod announces or withdraws a prefix
    hijack POD PREFIX [how=...]    an announcement the SPA must refuse
    degrade POD MS                 slow a pod's instances down (0 restores)
    link down|up A B               cut or restore a link
    kill|restart switch|agent NAME, kill|restart spa|scsc|central
    actions, action NAME ARGS...   every run-time action, by name

Each command is one function of dmsc/actions/, the same code the
experiment steps run (:func:`actions.run`, parameters checked against the
topology first), and its help is that function's docstring (``help call``).
Arguments are positional in the order the help lists them, or ``name=value``.

A command that fails prints one line (``*** call: no pod 'pod9'; pods: ...``)
and the prompt comes back: the network keeps running.
"""
from __future__ import annotations

import logging
import re
import shlex
import sys
from cmd import Cmd

from rich.console import Console
from rich.table import Table

from dmsc import actions

log = logging.getLogger("dmsc.cli")

try:
    from mininet.cli import CLI
except ImportError:        # units and `dmsc --help` need no Mininet
    CLI = Cmd

KW = re.compile(r"^([a-z_]+)=(.*)$")

# command -> (action, fixed leading parameters) for the two-word commands
KILLABLE = {"switch": "switch", "agent": "agent", "spa": "spa", "scsc": "scsc",
            "central": "central"}


class UsageError(ValueError):
    """A command typed wrong: the message says how to type it."""


def parse_args(action: str, tokens: list[str], fixed: dict | None = None) -> dict:
    """Tokens to an action's parameters (those not ``fixed`` by the command
    word): positional in the order of its parameters, or ``name=value``.
    Checking and conversion are the action's (:func:`actions.check_params`)."""
    fixed = fixed or {}
    names = [p["name"] for p in actions.params_of(action) if p["name"] not in fixed]
    out: dict[str, str] = {}
    positional = []
    for tok in tokens:
        m = KW.match(tok)
        if m and m.group(1) in names:
            out[m.group(1)] = m.group(2)
        elif m:
            raise UsageError(f"{action} has no parameter {m.group(1)!r}; it takes: "
                             f"{', '.join(names) or 'nothing'}")
        else:
            positional.append(tok)
    free = [n for n in names if n not in out]
    if len(positional) > len(free):
        raise UsageError(f"too many arguments: usage {usage(action)}")
    out.update(zip(free, positional))
    return {**fixed, **out}


def usage(action: str, words: str | None = None) -> str:
    parts = []
    for p in actions.params_of(action):
        name = p["name"].upper()
        parts.append(f"[{name}]" if "default" in p else name)
    return " ".join([words or action, *parts])


class DmscCLI(CLI):
    """Mininet's CLI on a DmscNet, with the DMSC commands (module docstring).

    ``DmscCLI(net)`` runs the prompt until ``exit``; ``script=FILE`` runs the
    file's commands and returns; ``loop=False`` only builds it, for a caller
    that feeds ``onecmd`` itself (tests)."""

    prompt = "dmsc> "

    def __init__(self, net, stdin=sys.stdin, stdout=None, script=None, loop: bool = True,
                 width: int | None = None):
        self.net = net
        out = stdout or sys.stdout
        self.console = Console(file=out, width=width or (None if out.isatty() else 120),
                               highlight=False, soft_wrap=False)
        if not loop:
            Cmd.__init__(self, stdin=stdin, stdout=out)
            self.mn, self.locals, self.inputFile = net.mn, {"net": net.mn}, None
            return
        super().__init__(net.mn, stdin=stdin, script=script, stdout=out)

    def getLocals(self):  # noqa: N802 (Mininet's name): `py dmsc.topo` in the CLI
        return {**super().getLocals(), "dmsc": self.net}

    # -- plumbing -------------------------------------------------------------------
    def onecmd(self, line):
        """Run one command; any error is one line and the prompt comes back."""
        try:
            return super().onecmd(line)
        except KeyboardInterrupt:
            raise
        except Exception as exc:                   # noqa: BLE001 (the CLI's own loop)
            cmd = (line.split() or ["?"])[0]
            known = isinstance(exc, (actions.ActionError, UsageError, RuntimeError,
                                     OSError, ValueError))
            msg = str(exc) if known else f"{type(exc).__name__}: {exc}"
            self.say(f"*** {cmd}: {' '.join(msg.split())}")
            log.debug("command %r failed", line, exc_info=True)
            return False

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def run_action(self, action: str, tokens: list[str], fixed: dict | None = None) -> dict:
        return actions.run(self.net, action, **parse_args(action, tokens, fixed))

    @staticmethod
    def _tokens(line: str) -> list[str]:
        try:
            return shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"cannot split the line: {exc}") from None

    def _switch_cmd(self, action: str, line: str) -> dict:
        toks = self._tokens(line)
        if len(toks) != 1:
            raise UsageError(f"usage: {usage(action)}")
        return self.run_action(action, toks)

    # -- reads ----------------------------------------------------------------------
    def do_fib(self, line):
        """fib SWITCH: the FIB read back over P4Runtime, keys shown as names"""
        res = self._switch_cmd("fib", line)
        t = Table(title=f"{res['switch']}: FIB read over P4Runtime")
        for col in ("prefix", "key", "next hops / action", "packets"):
            t.add_column(col)
        for e in res["entries"]:
            hops = e["action"] or ", ".join(f"port {h['port']} ({h['neighbour'] or h['mac']})"
                                            for h in e["next_hops"])
            t.add_row(e["prefix"], e["key"], hops, str(e["packets"]))
        self.console.print(t)

    def do_lsdb(self, line):
        """lsdb SWITCH: the agent's LSDB and neighbours"""
        res = self._switch_cmd("lsdb", line)
        t = Table(title=f"{res['switch']}: LSDB ({len(res['lsas'])} LSAs)")
        for col in ("origin", "frag", "seq", "life s", "overload", "adjacencies", "prefixes"):
            t.add_column(col)
        for x in res["lsas"]:
            t.add_row(x["origin"], str(x["fragment"]), str(x["seq"]), f"{x['lifetime_s']:.0f}",
                      "yes" if x["overload"] else "",
                      ", ".join(f"{n}({c:g})" for n, c in x["adjacencies"].items()),
                      ", ".join(x["prefixes"]))
        self.console.print(t)
        n = Table(title="neighbours")
        for col in ("port", "router", "state", "heard s ago"):
            n.add_column(col)
        for x in res["neighbours"]:
            n.add_row(str(x["port"]), x["router"], x["state"], f"{x['heard_s_ago']:.2f}")
        self.console.print(n)

    def do_rib(self, line):
        """rib SWITCH: the agent's RIB"""
        res = self._switch_cmd("rib", line)
        t = Table(title=f"{res['switch']}: RIB (SPF runs {res['spf_runs']}, "
                        f"FIB version {res['fib_version']})")
        for col in ("prefix", "origins", "cost", "next hops"):
            t.add_column(col)
        for e in res["routes"]:
            t.add_row(e["prefix"], ", ".join(e["origins"]), f"{e['cost']:g}",
                      ", ".join(f"port {h['port']} -> {h['neighbour']}" for h in e["next_hops"]))
        self.console.print(t)

    def do_policy(self, line):
        """policy SWITCH: the SCSC policies in force on the switch"""
        res = self._switch_cmd("policy", line)
        t = Table(title=f"{res['switch']}: SCSC policies ({res['scsc'] or 'none'}, "
                        f"version {res['version']})")
        for col in ("service", "from", "port", "to MAC", "instance", "expires in s", "packets"):
            t.add_column(col)
        for p in res["policies"]:
            t.add_row(p["service"], ", ".join(p["from"]), str(p["port"]), p["mac"],
                      p["instance"], f"{p['expires_in_s']:.1f}", str(p["packets"]))
        self.console.print(t)
        if not res["policies"]:
            self.say(f"{res['switch']}: no SCSC policy in force (SPF routes)")

    def do_stats(self, line):
        """stats SWITCH: per-port kernel and P4 counters, drops and punts by reason"""
        from dmsc import stats
        toks = self._tokens(line)
        if len(toks) != 1 or toks[0] not in self.net.topo.switches():
            raise UsageError(f"usage: stats SWITCH (one of {', '.join(self.net.topo.switches())})")
        st = stats.net_stats(self.net, [toks[0]])[toks[0]]
        for t in stats.tables(st):
            self.console.print(t)

    def do_scsc(self, line):
        """scsc: the SCSC's current decisions"""
        from dmsc.live_view import scsc_decisions
        if self.net.scsc is None:
            raise UsageError("this network runs without an SCSC (dmsc up --probe-ms 100)")
        v = scsc_decisions(self.net.scsc_addr)
        if v["state"] != "up":
            raise UsageError(f"the SCSC at {self.net.scsc_addr} does not answer ({v.get('error')})")
        t = Table(title=f"SCSC at {self.net.scsc_addr}: decisions")
        for col in ("SG", "service", "SPF default", "steered to", "path", "why"):
            t.add_column(col)
        for d in v["decisions"]:
            t.add_row(d["sg"], d["service"], d["default"], d["chosen"] or "-",
                      " ".join(d["path"]), d["why"])
        self.console.print(t)

    # -- traffic --------------------------------------------------------------------
    def do_call(self, line):
        """call POD DST [METHOD] [SRC] [TIMEOUT_S]: a call by name from a pod"""
        out = self.run_action("call", self._tokens(line))
        if out.get("ok"):
            self.say(f"{out['src']} -> {out['dst']}: {out.get('result')} from {out.get('from')}, "
                     f"round trip {out.get('rtt_ms')} ms, {out.get('hops')} switches on the "
                     f"way back")
        else:
            self.say(f"{out['src']} -> {out['dst']} failed: {out.get('error')}")

    def do_probe(self, line):
        """probe POD DST [SRC] [TIMEOUT_S]: a probe and its per-hop records"""
        out = self.run_action("probe", self._tokens(line))
        if not out.get("ok"):
            self.say(f"probe {out['src']} -> {out['dst']} failed: {out.get('error')}")
            return
        self.say(f"probe {out['src']} -> {out['dst']}: answered by {out.get('from')}, round "
                 f"trip {out.get('rtt_ms')} ms")
        hops = out.get("hops") or []
        if hops:
            t = Table(title="forward path, one record per switch")
            cols = ["switch"] + [k for k in hops[0] if k != "switch"]
            for c in cols:
                t.add_column(c)
            for h in hops:
                t.add_row(*(str(h.get(c, "")) for c in cols))
            self.console.print(t)

    def do_announce(self, line):
        """announce POD PREFIX [WAIT_S]: the pod announces a prefix (SPA-checked)"""
        out = self.run_action("announce", self._tokens(line))
        self.say(f"{out['pod']} announced {out['prefix']}: {out['state']}"
                 + (f" ({out['reason']})" if out.get("reason") else "")
                 + f" after {out['waited_s']} s")

    def do_withdraw(self, line):
        """withdraw POD PREFIX [WAIT_S]: the pod withdraws a prefix"""
        out = self.run_action("withdraw", self._tokens(line))
        self.say(f"{out['pod']} withdrew {out['prefix']}: {out['state']} after "
                 f"{out['waited_s']} s")

    def do_hijack(self, line):
        """hijack POD PREFIX [HOW] [WATCH_S]: an announcement the SPA must refuse"""
        out = self.run_action("hijack", self._tokens(line))
        self.say(f"{out['pod']} announced {out['prefix']} ({out['how']}): SG answered "
                 f"{out['answer']}, SPA {out['spa_state']} ({out['reason']}); FIBs changed: "
                 f"{', '.join(out['fibs_changed']) or 'none'}")

    def do_degrade(self, line):
        """degrade POD SERVICE_MS: slow the pod's instances down (0 restores)"""
        out = self.run_action("degrade", self._tokens(line))
        self.say(f"{out['pod']}: service time {out['service_ms']:g} ms")

    # -- failures -------------------------------------------------------------------
    def do_link(self, line):
        """link down|up A B: cut or restore a link"""
        toks = self._tokens(line)
        if len(toks) != 3 or toks[0] not in ("down", "up"):
            raise UsageError("usage: link down|up A B (e.g. link down sg1 sr3)")
        out = self.run_action(f"link_{toks[0]}", toks[1:])
        self.say(f"link {out['link']}: {out['state']}")

    def _lifecycle(self, verb: str, line: str):
        toks = self._tokens(line)
        if not toks or toks[0] not in KILLABLE:
            raise UsageError(f"usage: {verb} switch NAME | agent NAME | spa [NAME] | scsc | "
                             f"central")
        out = self.run_action(f"{verb}_{toks[0]}", toks[1:])
        if "state" in out:          # {"agent": "sg1", "state": "killed", "pid": 42}
            what = " ".join(str(v) for k, v in out.items() if k not in ("state", "pid"))
            self.say(f"{toks[0]} {what}: {out['state']}"
                     + (f" (pid {out['pid']})" if out.get("pid") else ""))
        else:                       # {"central": "killed"}
            self.say(", ".join(f"{k}: {v}" for k, v in out.items()))

    def do_kill(self, line):
        """kill KIND [NAME]: SIGKILL a switch, an agent, the SPA, the SCSC, the central"""
        self._lifecycle("kill", line)

    def do_restart(self, line):
        """restart KIND [NAME]: start a killed switch, agent, SPA, SCSC, central again"""
        self._lifecycle("restart", line)

    # -- every action ---------------------------------------------------------------
    def do_actions(self, line):
        """actions: every run-time action with its usage"""
        t = Table(title="run-time actions (`action NAME ARGS...`, `help action NAME`)")
        t.add_column("usage")
        t.add_column("what it does")
        for name in sorted(actions.ACTIONS):
            t.add_row(usage(name), actions.summary(name))
        self.console.print(t)

    def do_action(self, line):
        """action NAME [ARGS...]: run any run-time action by name"""
        toks = self._tokens(line)
        if not toks:
            raise UsageError("usage: action NAME [ARGS...] (`actions` lists them)")
        out = self.run_action(toks[0], toks[1:])
        self.say(" ".join(f"{k}={v}" for k, v in out.items()))

    # -- help -----------------------------------------------------------------------
    def commands(self) -> list[tuple[str, str, str]]:
        """(command, usage, help) of every DMSC command; the help of one that
        runs actions is their docstrings."""
        def acts(*names):
            return "\n\n".join(f"{n}: {actions.help_text(n)}" for n in names
                                if n in actions.ACTIONS)
        out = [(c, usage(c, c) if c not in ("fib", "lsdb", "rib", "policy") else f"{c} SWITCH",
                actions.help_text(c))
               for c in ("fib", "lsdb", "rib", "policy", "call", "probe", "announce",
                         "withdraw", "hijack", "degrade")]
        out += [
            ("stats", "stats SWITCH",
             "Per port: the kernel interface's counters (rx_packets, rx_dropped, tx) beside "
             "the P4 program's port_in count; their difference is what was lost before the "
             "P4 program (BMv2's capture or input queue). Then the P4 drop and punt counters "
             "by reason (dmsc/stats.py)."),
            ("scsc", "scsc", "The SCSC's current decisions: per SG and service, the SPF "
             "default, where traffic is steered, over which path, and why."),
            ("link", "link down|up A B", acts("link_down", "link_up")),
            ("kill", "kill switch NAME | agent NAME | spa [NAME] | scsc | central",
             acts(*(f"kill_{k}" for k in KILLABLE))),
            ("restart", "restart switch NAME | agent NAME | spa [NAME] | scsc | central",
             acts(*(f"restart_{k}" for k in KILLABLE))),
            ("actions", "actions", "Every run-time action with its usage."),
            ("action", "action NAME [ARGS...]", "Run any run-time action by name, arguments "
             "positional or name=value (help action NAME: its help)."),
        ]
        return out

    def do_help(self, line):
        """help [COMMAND]: the DMSC commands, then Mininet's."""
        toks = line.split()
        if len(toks) == 2 and toks[0] == "action":
            self.say(usage(toks[1]) + "\n\n" + actions.help_text(toks[1]))
            return
        for cmd, use, text in self.commands():
            if toks and toks[0] == cmd:
                self.say(f"{use}\n\n{text}")
                return
        if toks:
            return super().do_help(line)
        t = Table(title="DMSC commands (help COMMAND for details)")
        t.add_column("usage")
        t.add_column("what it does")
        for cmd, use, _text in self.commands():
            doc = getattr(self, f"do_{cmd}").__doc__
            t.add_row(use, doc.rsplit(": ", 1)[1])
        self.console.print(t)
        if CLI is not Cmd:
            self.say("Mininet's commands work too (nodes, links, py, pod1 <shell command>...):")
            super().do_help("")
