"""Port carrier, read from the switch's interfaces (a hint: hellos are what
detect failures).

:func:`carrier` reads one interface once (the central controller uses it);
:class:`CarrierReader` keeps each file open and re-reads it in place;
:class:`CarrierPoller` gives an agent's router the carrier of its ports every
``CARRIER_POLL_S``, and counts the ports it cannot read.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("dmsc.agent")

CARRIER_POLL_S = 0.1     # carrier is a hint; hellos are what detect failures


def carrier(intf: str) -> bool | None:
    """The interface's carrier, or None when it cannot be read (no such
    interface here, a namespace we cannot see): unknown is not down, so the
    caller leaves failure detection to the hellos, and counts it."""
    try:
        return Path(f"/sys/class/net/{intf}/operstate").read_text().strip() != "down"
    except OSError:
        return None


class CarrierReader:
    """:func:`carrier` for the same interfaces again and again: each file is
    opened once and re-read in place (sysfs gives the current state on every
    read at offset 0). Opening and closing the file every 100 ms on every port
    was a fifth of an idle agent's Python time (py-spy, docs/decisions.md)."""

    def __init__(self):
        self.fds: dict[str, int] = {}

    def __call__(self, intf: str) -> bool | None:
        fd = self.fds.get(intf)
        try:
            if fd is None:
                fd = self.fds[intf] = os.open(f"/sys/class/net/{intf}/operstate", os.O_RDONLY)
            return os.pread(fd, 32, 0).strip() != b"down"
        except OSError:
            self.close(intf)
            return None

    def close(self, intf: str | None = None) -> None:
        for name in ([intf] if intf else list(self.fds)):
            fd = self.fds.pop(name, None)
            if fd is not None:
                os.close(fd)


class CarrierPoller:
    """The carrier of one switch's ports ({port: interface name}) to its router.
    A port whose carrier cannot be read is counted (``carrier_unreadable``) and
    logged once, and left to the hellos."""

    def __init__(self, intfs: dict[int, str], counters):
        self.intfs = intfs
        self.counters = counters
        self.read = CarrierReader()
        self.unreadable: set[str] = set()

    def poll(self, router, now: float) -> None:
        for p, intf in self.intfs.items():
            up = self.read(intf)
            if up is None:
                self.counters["carrier_unreadable"] += 1
                if intf not in self.unreadable:
                    self.unreadable.add(intf)
                    log.warning("carrier of %s (port %d) cannot be read: hellos alone "
                                "detect failures on it", intf, p)
                continue
            router.on_port_status(p, up, now)

    def close(self) -> None:
        self.read.close()
