"""A pod's identity: an Ed25519 key pair (the ``cryptography`` package).

Generated into the run directory when the topology file names no key file,
or read from the PEM file it names. The public key, raw (32 bytes) and
base64, is what the SPA's registry lists; its key id (traffic.wire.announcement)
is what announcements carry.
"""
from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traffic.wire import defs
from traffic.wire.announcement import NONCE_BYTES, Announcement, key_id_of


class IdentityError(ValueError):
    pass


class Identity:
    def __init__(self, private: Ed25519PrivateKey):
        self.private = private
        self.public_raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = key_id_of(self.public_raw)

    @classmethod
    def generate(cls) -> "Identity":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path) -> "Identity":
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise IdentityError(f"{path}: not a readable unencrypted PEM private key ({exc})") \
                from None
        if not isinstance(key, Ed25519PrivateKey):
            raise IdentityError(f"{path}: not an Ed25519 key ({type(key).__name__})")
        return cls(key)

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = self.private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return path

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    def announcement(self, prefix: str, *, withdraw: bool = False, src: str = "/",
                     msg_id: int = 0, timestamp_ns: int | None = None,
                     nonce: bytes | None = None) -> Announcement:
        """A signed announcement (or withdrawal) of ``prefix``, fresh by default."""
        msg_type = defs.TYPE_WITHDRAW if withdraw else defs.TYPE_ANNOUNCE
        ts = time.time_ns() if timestamp_ns is None else timestamp_ns
        nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
        unsigned = Announcement(msg_type, prefix, self.key_id, ts, nonce, b"", src, msg_id)
        sig = self.private.sign(unsigned.signed_bytes())
        return Announcement(msg_type, prefix, self.key_id, ts, nonce, sig, src, msg_id)
