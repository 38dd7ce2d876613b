"""App: one long-running child process with its own log.

``start()`` launches it (dying with its parent), ``ready(deadline)`` polls
until it serves (subclasses say what serving means; never a sleep), ``stop()``
ends it by PID: SIGTERM, then SIGKILL after a grace period. :func:`stop_all`
stops many under one shared deadline: dozens of agents stopped one after the
other on a loaded machine took minutes.
"""
from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from topologies.emu.child_processes import REPO_ROOT, die_with_parent, py_env

log = logging.getLogger("dmsc.apps")


class AppError(RuntimeError):
    """An app that did not start or did not become ready; the message says
    which and where its log is."""


class App:
    kind = "app"
    start_timeout_s = 20.0      # ready()'s deadline when none is given

    def __init__(self, name: str, log_path):
        self.name = name
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None

    # -- what a subclass says ----------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        """Start the process (a pod overrides this to start it in its namespace)."""
        return subprocess.Popen(cmd, **kw)

    def check_ready(self) -> bool:
        """True once the app serves; the default: it is running."""
        return True

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "App":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = self.popen(die_with_parent(self.command()), stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=str(REPO_ROOT), env=py_env())
        log.debug("%s %s started, pid %d", self.kind, self.name, self.proc.pid)
        return self

    def ready(self, deadline: float | None = None, poll_s: float = 0.05) -> None:
        """Poll until :meth:`check_ready` or the monotonic ``deadline``
        (default: ``start_timeout_s`` from now); AppError if the process exits
        first or time runs out."""
        if deadline is None:
            deadline = time.monotonic() + self.start_timeout_s
        while True:
            if not self.alive():
                code = self.proc.returncode if self.proc else None
                raise AppError(f"{self.kind} {self.name} exited ({code}); see {self.log_path}"
                               + self._tail())
            if self.check_ready():
                return
            if time.monotonic() > deadline:
                raise AppError(f"{self.kind} {self.name} not ready before the deadline; "
                               f"see {self.log_path}")
            time.sleep(poll_s)     # poll interval, not a guessed duration

    def _tail(self, lines: int = 10) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return ("; last output:\n" + "\n".join(text)) if text else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, grace_s: float = 5.0) -> None:
        stop_all([self], grace_s=grace_s)

    def kill(self) -> None:
        """SIGKILL (failure injection)."""
        stop_all([self], kill=True)


def stop_all(apps, grace_s: float = 10.0, kill: bool = False) -> None:
    """SIGTERM (SIGKILL with ``kill``) to every app at once, wait for all of
    them under one deadline, SIGKILL whatever is left. Never raises for an
    app that is already gone."""
    procs = [(a, a.proc) for a in apps if a.proc is not None]
    for _a, proc in procs:
        if proc.poll() is None:
            proc.kill() if kill else proc.terminate()
    deadline = time.monotonic() + grace_s
    for app, proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.info("%s %s did not stop on SIGTERM within %.0f s: killed",
                     app.kind, app.name, grace_s)
            proc.kill()
    for app, proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            log.error("%s %s (pid %d) still running after SIGKILL", app.kind, app.name, proc.pid)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
