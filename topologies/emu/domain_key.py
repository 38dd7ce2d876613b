"""The routing domain's secret: ``RUN_DIR/domain.key``, one per network.

Agents, the central controller and the SCSC read it (``--key-file``) and
derive their HMAC keys from it (controller/keys.py), as IS-IS authentication
shares one key per area. It is made here, once per run directory, the first
time an app that needs it starts: 32 random bytes, readable by root alone.
"""
from __future__ import annotations

import os
from pathlib import Path

KEY_BYTES = 32


def domain_key_file(run_dir) -> Path:
    """Where a network's domain key lives (it may not exist yet)."""
    return Path(run_dir) / "domain.key"


def ensure_domain_key(run_dir) -> Path:
    """The domain key of ``run_dir``, made now if the run has none yet."""
    path = domain_key_file(run_dir)
    try:        # created 0600: never readable by others, not even for a moment
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(KEY_BYTES))
    path.chmod(0o600)           # whatever the umask
    return path
