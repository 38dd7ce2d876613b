"""Headless Chromium for the live view's tests: load a page, let its scripts
run (virtual time), return the DOM they built."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest


def chromium() -> str:
    """The browser binary; skips the test (naming what is missing) without one."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("needs Debian's chromium package (apt-get install chromium) for the "
                "headless browser test of the live view")


def dump_dom(url: str, budget_ms: int = 4000, timeout_s: float = 90.0) -> str:
    """The page's DOM after ``budget_ms`` of virtual time (its timers and
    fetches run; real network requests pause the virtual clock)."""
    with tempfile.TemporaryDirectory(prefix="dmsc-chromium-") as profile:
        res = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                              f"--user-data-dir={profile}", "--no-first-run",
                              f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                             capture_output=True, text=True, timeout=timeout_s)
    assert res.returncode == 0 and "<html" in res.stdout, res.stderr[-2000:]
    return res.stdout


class Elements(HTMLParser):
    """Every element's tag and attributes, and each one's text, in order."""

    def __init__(self, html: str):
        super().__init__()
        self.items: list[dict] = []
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        e = {"tag": tag, **{k: (v if v is not None else "") for k, v in attrs}, "text": ""}
        self.items.append(e)
        self._open.append(e)

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for e in self._open:
            e["text"] += data

    def with_attr(self, name: str) -> dict[str, dict]:
        """{value: element} of the elements that carry attribute ``name``."""
        return {e[name]: e for e in self.items if name in e}
