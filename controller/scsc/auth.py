"""Type-4 messages are signed with the domain key: HMAC-SHA256 over the
message serialized (deterministically) with its ``auth`` field empty."""
from __future__ import annotations

import hashlib
import hmac


def sign(msg, key: bytes):
    msg.auth = b""
    msg.auth = hmac.new(key, msg.SerializeToString(deterministic=True), hashlib.sha256).digest()
    return msg


def verify(msg, key: bytes) -> bool:
    got = bytes(msg.auth)
    msg.auth = b""
    want = hmac.new(key, msg.SerializeToString(deterministic=True), hashlib.sha256).digest()
    msg.auth = got
    return hmac.compare_digest(got, want)
