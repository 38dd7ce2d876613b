"""Headless Chromium for the live view's tests: load a page, let its scripts
run (virtual time), return the DOM they built."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest


def chromium() -> str:
    """The browser binary; skips the test (naming what is missing) without one."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("needs Debian's chromium package (apt-get install chromium) for the "
                "headless browser test of the live view")


WINDOW = (1400, 900)       # the window the live view is judged in


def _run(args: list[str], url: str, budget_ms: int, window, timeout_s: float) -> str:
    with tempfile.TemporaryDirectory(prefix="dmsc-chromium-") as profile:
        res = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                              f"--user-data-dir={profile}", "--no-first-run",
                              "--hide-scrollbars", f"--window-size={window[0]},{window[1]}",
                              f"--virtual-time-budget={budget_ms}", *args, url],
                             capture_output=True, text=True, timeout=timeout_s)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def dump_dom(url: str, budget_ms: int = 4000, timeout_s: float = 90.0,
             window: tuple[int, int] = WINDOW) -> str:
    """The page's DOM after ``budget_ms`` of virtual time (its timers and
    fetches run; real network requests pause the virtual clock), laid out in
    a ``window``-sized window."""
    out = _run(["--dump-dom"], url, budget_ms, window, timeout_s)
    assert "<html" in out, out[-2000:]
    return out


def screenshot(url: str, path, budget_ms: int = 4000, timeout_s: float = 90.0,
               window: tuple[int, int] = WINDOW) -> None:
    """A PNG of the page after ``budget_ms`` of virtual time, ``window`` in size."""
    _run([f"--screenshot={path}"], url, budget_ms, window, timeout_s)
    assert Path(path).stat().st_size > 0, f"chromium wrote no screenshot to {path}"


class Elements(HTMLParser):
    """Every element's tag and attributes, its text and its ``parent`` element, in order."""

    def __init__(self, html: str):
        super().__init__()
        self.items: list[dict] = []
        self._open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        e = {"tag": tag, **{k: (v if v is not None else "") for k, v in attrs}, "text": "",
             "parent": self._open[-1] if self._open else None}
        self.items.append(e)
        self._open.append(e)

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for e in self._open:
            e["text"] += data

    def inside(self, parent: dict, tag: str, cls: str | None = None) -> list[dict]:
        """The elements ``tag`` (with class ``cls``) anywhere inside ``parent``."""
        def within(e):
            while e is not None:
                if e is parent:
                    return True
                e = e["parent"]
            return False
        return [e for e in self.items if e["tag"] == tag and within(e["parent"])
                and (cls is None or cls in e.get("class", "").split())]

    def with_attr(self, name: str) -> dict[str, dict]:
        """{value: element} of the elements that carry attribute ``name``."""
        return {e[name]: e for e in self.items if name in e}
