"""Shared test helpers: what a tier needs, and a skip that names what is missing.

With ``DMSC_REQUIRE_ALL=1`` (CI sets it) a skip is a failure naming what is
missing, except a skip whose reason starts with ``optional:`` (recompiling P4 with
p4c, a check that needs the kernel to lack netem): CI runs every tier or fails.
"""
from __future__ import annotations

import os
import shutil

import pytest

from controller.switch.artifacts import BMV2_JSON, P4INFO, REPO_ROOT as ROOT  # noqa: F401


REQUIRE_ALL = os.environ.get("DMSC_REQUIRE_ALL") == "1"
OPTIONAL = "optional:"


def missing_for(tier: str) -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if shutil.which("simple_switch_grpc") is None:
        missing.append("simple_switch_grpc (BMv2) on PATH")
    if not P4INFO.exists() or not BMV2_JSON.exists():
        missing.append("compiled P4 outputs in p4src/build/")
    if tier == "mininet":
        if shutil.which("mnexec") is None:
            missing.append("mnexec (package 'mininet')")
        try:
            import mininet.net  # noqa: F401
        except ImportError:
            missing.append("the mininet Python package")
    return missing


def pytest_collection_modifyitems(config, items):
    for tier in ("bmv2", "mininet"):
        missing = missing_for(tier)
        if not missing:
            continue
        skip = pytest.mark.skip(reason=f"{tier} tier needs: {', '.join(missing)}")
        for item in items:
            if tier in item.keywords:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under DMSC_REQUIRE_ALL=1, a skip (other than an optional one) fails."""
    outcome = yield
    rep = outcome.get_result()
    if not (REQUIRE_ALL and rep.skipped) or hasattr(rep, "wasxfail"):
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if reason.startswith(OPTIONAL):
        return
    rep.outcome = "failed"
    rep.longrepr = (f"DMSC_REQUIRE_ALL=1 and this test would have skipped: {reason} "
                    "(run `sudo make setup`, or unset DMSC_REQUIRE_ALL to allow skips)")
