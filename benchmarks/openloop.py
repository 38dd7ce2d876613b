"""The benchmarks' open-loop load: traffic.loadgen in a pod's namespace (not a benchmark).

``Load(net, pod, dst, rate=..., duration=..., timeout=...)`` starts the
generator at a fixed rate (constant arrivals), bounded in count (rate x
duration) and time (``--deadline``), every call appended to a records file
(intended send time ``t``, status, responder, latency from the intended
time). ``wait_answering()`` polls the file until the first call is answered
(the generator's start-up is not the network's); ``finish()`` waits for the
summary, ``stop()`` ends it early (SIGTERM: it still reports, the rest of its
schedule ``not_sent``); ``records()`` reads the calls back for
traffic.loadgen's outage/shift/tally functions.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.switch.artifacts import REPO_ROOT as ROOT             # noqa: E402
from topologies.emu.child_processes import die_with_parent, py_env   # noqa: E402
from traffic import loadgen                                          # noqa: E402


class Load:
    def __init__(self, net, pod: str, dst: str, *, rate: float, duration: float,
                 timeout: float, src: str | None = None, method: str = "echo",
                 records: Path | None = None, deadline: float | None = None):
        t = net.topo
        self.rate, self.duration, self.timeout = rate, duration, timeout
        if records is None:
            fd, name = tempfile.mkstemp(prefix="dmsc-bench-calls-", suffix=".jsonl")
            os.close(fd)
            records = Path(name)
            self._own_file = True
        else:
            self._own_file = False
        self.path = Path(records)
        self.path.write_text("")
        self.deadline = deadline if deadline is not None else duration + timeout + 5.0
        cmd = [sys.executable, "-m", "traffic.loadgen", "--loop", "open",
               "--iface", t.intf_name(pod, 0), "--src", src or t.instances(pod)[0],
               "--mac", t.mac(pod, 0), "--rate", str(rate), "--duration", str(duration),
               "--timeout", str(timeout), "--deadline", str(self.deadline),
               "--records", str(self.path), dst, method]
        self.proc = net.host(pod).popen(die_with_parent(cmd), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=str(ROOT), env=py_env())
        self.summary: dict | None = None
        self._records: list[dict] | None = None

    def wait_answering(self, timeout: float = 30.0) -> float:
        """Until the first call is answered (polled in the records file); its
        intended send time. Raises RuntimeError if none is within ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(self.path) as f:
                for line in f:
                    if '"status": "ok"' in line:
                        try:
                            return json.loads(line)["t"]
                        except ValueError:
                            break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        why = self.proc.stderr.read().decode()[-300:] if self.proc.poll() is not None \
            else "still running"
        raise RuntimeError(f"open loop: no call answered within {timeout:g} s ({why})")

    def stop(self) -> dict:
        """End it now (SIGTERM: calls in flight get their time-out, the rest
        of the schedule is not_sent); the summary."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.finish(timeout=self.timeout + 30)

    def finish(self, timeout: float | None = None) -> dict:
        if self.summary is not None:
            return self.summary
        try:
            out, err = self.proc.communicate(timeout=timeout if timeout is not None
                                             else self.deadline + 30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                out, err = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
        try:
            self.summary = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError(f"open loop: no summary: {err.decode()[-400:]}") from None
        return self.summary

    def records(self) -> list[dict]:
        if self._records is None:
            self._records = loadgen.read_records(self.path)
        return self._records

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        if self._own_file:
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def describe(s: dict) -> str:
    """One line for a run's summary: open loop at its rate, every call counted."""
    return (f"open loop, {s['rate']:g} calls/s: {s['ok']} of {s['scheduled']} scheduled calls "
            f"answered ({s['answered_pct']} %), {s['failed']} failed ({s['not_sent']} not "
            f"sent), p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, p99.9 {s['p999_ms']} ms "
            f"(from the intended send time), generator late p99 {s['late']['p99_ms']} ms, "
            f"errors {s['errors']}")


def through_event(net, pod: str, dst: str, event, *, rate: float, duration: float,
                  timeout: float, src: str | None = None, lead: float = 0.5) -> dict:
    """Open-loop calls ``pod`` -> ``dst`` at ``rate`` for ``duration`` s; ``lead`` s
    after the first answer, ``event()`` (a link cut; it may wait for the FIBs)
    runs and the clock time just before it is ``t0``. From the calls' records
    (intended send times): ``outage_ms``, the longest run of unanswered calls not
    over before ``t0`` (0 if none); ``restored_ms``, ``t0`` -> the first answered
    call after it (None: not within the calls); ``calls``, every call scheduled from
    ``t0`` on, counted (loadgen.tally); ``event``, what ``event()`` returned."""
    with Load(net, pod, dst, src=src, rate=rate, duration=duration, timeout=timeout) as load:
        t_first = load.wait_answering(30)
        time.sleep(max(0.0, t_first + lead - time.monotonic()))    # calls at a steady state
        t0 = time.monotonic()
        got = event()
        summary = load.finish()
        recs = load.records()
    worst = loadgen.longest_outage(recs, after=t0)
    return {"t0": t0, "event": got, "summary": summary, "calls": loadgen.tally(recs, since=t0),
            "outage_ms": round(worst.seconds * 1000, 1) if worst else 0.0,
            "outage_calls": worst.calls if worst else 0,
            "restored_ms": None if worst is None or worst.end is None
            else round(max(0.0, worst.end - t0) * 1000, 1)}
