"""Waiting for a condition with a deadline, instead of sleeping and hoping."""
from __future__ import annotations

import time

import pytest


def poll(fn, timeout: float, what: str, interval: float = 0.05):
    """``fn()`` until it returns something truthy, which is returned; fails
    the test naming ``what`` once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(interval)
