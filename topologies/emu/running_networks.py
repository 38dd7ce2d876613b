"""Which networks run on this machine: a record per running DmscNet.

Interface names (``sg1-eth1``) and the emulation are machine-wide: a second
``dmsc up`` while another network (or its leftovers) holds the names made
Mininet die with "RTNETLINK answers: File exists". Every DmscNet writes a
record here when it starts and removes it when it stops; a network that was
killed leaves its record behind, and the record's process id (with its start
time, so a reused pid is not mistaken for it) tells a running network from
leftovers. :func:`who_holds` turns the records into the one line a user needs:
which network, whether it still runs, and the command that stops or cleans it.

The records live in /run/dmsc/networks (a tmpfs: a reboot clears it along
with the interfaces); each run directory's ``network.json`` carries the same
pid and topology name, and is read too (``runs/*/network.json``).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

RECORDS_DIR = Path("/run/dmsc/networks")


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat
    field 22), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after it
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(record: dict) -> bool:
    """The record's process still runs (and is the same process, not a reuse of its pid)."""
    pid = record.get("pid")
    if not isinstance(pid, int) or record.get("stopped"):
        return False
    started = process_start(pid)
    if started is None:
        return False
    want = record.get("pid_start")
    return want is None or want == started


def describe(topo, run_dir, interfaces) -> dict:
    """This process's record for a network it is starting."""
    return {"pid": os.getpid(), "pid_start": process_start(os.getpid()),
            "topology_name": topo.name, "topology": str(topo.source),
            "run_dir": str(Path(run_dir).resolve()), "interfaces": sorted(interfaces),
            "command": " ".join(Path(sys.argv[0]).name if i == 0 else a
                                for i, a in enumerate(sys.argv)),
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def register(record: dict, records_dir: Path = RECORDS_DIR) -> Path:
    records_dir.mkdir(parents=True, exist_ok=True)
    path = records_dir / f"{record['pid']}-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(record, indent=2))
    return path


def records(records_dir: Path = RECORDS_DIR, run_roots=()) -> list[dict]:
    """Every record: this machine's, and each ``network.json`` under the run
    roots (``<root>/*/network.json``); one per run directory, the newest."""
    found: dict[str, dict] = {}
    paths = sorted(records_dir.glob("*.json")) if records_dir.is_dir() else []
    for root in run_roots:
        paths += sorted(Path(root).glob("*/network.json"))
    for path in paths:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(rec, dict) or "pid" not in rec:
            continue                 # a network.json from before records carried a pid
        if rec.get("stopped"):
            continue                 # stopped cleanly by its own process: holds nothing
        rec.setdefault("run_dir", str(path.parent.resolve()))
        rec["record"] = str(path)
        found.setdefault(rec["run_dir"], rec)
    return list(found.values())


def forget_dead(records_dir: Path = RECORDS_DIR) -> None:
    """Remove the records of processes that no longer run (after their
    leftovers were cleaned up)."""
    for rec in records(records_dir):
        if not alive(rec):
            Path(rec["record"]).unlink(missing_ok=True)


def who_holds(taken: list[str], recs: list[dict]) -> str:
    """One line: the interfaces taken, the network(s) that hold them, and
    what to do about each."""
    shown = f"{', '.join(taken[:4])}{' ...' if len(taken) > 4 else ''}"
    holders = [r for r in recs if set(r.get("interfaces") or ()) & set(taken)]
    if not holders:      # no record names them: a record without interfaces may still be it
        holders = [r for r in recs if not r.get("interfaces")]
    parts = []
    for r in sorted(holders, key=lambda r: not alive(r)):
        what = (f"network '{r.get('topology_name', '?')}' (pid {r['pid']}, started "
                f"{r.get('started', '?')}, `{r.get('command') or '?'}`, run dir {r['run_dir']})")
        if alive(r):
            me = " (this very process)" if r["pid"] == os.getpid() else ""
            parts.append(f"{what} is running{me}: stop it with Ctrl-C in its terminal or "
                         f"`sudo kill {r['pid']}`")
        else:
            parts.append(f"{what} is no longer running and left them behind: "
                         f"`sudo mn -c` removes them")
    if not parts:
        parts.append("no running network of this testbed claims them (leftovers of one "
                     "that was killed, or of another Mininet): `sudo mn -c` removes them")
    return f"interfaces {shown} already exist: " + "; ".join(parts)


def mark_stopped(state_file: Path) -> None:
    """A network stopped by its own process: its run directory's
    ``network.json`` says so (the process may live on, as a test run does,
    and must not be named as holding interfaces it released)."""
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return
    if isinstance(state, dict):
        state["stopped"] = time.strftime("%Y-%m-%d %H:%M:%S")
        state_file.write_text(json.dumps(state, indent=2))
