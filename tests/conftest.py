"""Shared test helpers: what a tier needs, and a skip that names what is missing."""
from __future__ import annotations

import os
import shutil

import pytest

from controller.switch.artifacts import BMV2_JSON, P4INFO, REPO_ROOT as ROOT  # noqa: F401


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
