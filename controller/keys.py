"""One key per purpose, derived from the domain secret, and the HMACs made with them.

The domain's secret (``RUN_DIR/domain.key``) is never used as a key itself. Each
purpose gets its own key through HKDF-SHA256 (RFC 5869, the ``cryptography``
package) with the purpose as the context string, so a message made for one purpose
never verifies for another (a telemetry report signed with the routing key is
refused by the SCSC, an LSA cannot pass for a policy set):

* ``ROUTING``: hellos, LSAs and LSA acks between agents, the central controller's
  discovery frames (``auth_code`` over the frame type and body);
* ``TELEMETRY``: SG/SR -> SCSC reports (``sign``/``verify`` over the protobuf);
* ``POLICY``: SCSC -> SG/SR policy sets.
"""
from __future__ import annotations

import functools
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Sequence numbers and versions of telemetry and policy sets count milliseconds of
# the sender's clock (a sender starts at its clock and adds one per message, far
# fewer than one a millisecond). One further ahead of the receiver's clock than this
# is refused: otherwise a single message with 2^64-1 would lock its sender out.
AHEAD_S = 60.0


def too_far_ahead(counter: int, now_s: float) -> bool:
    """Is a millisecond-clock sequence number or version implausibly far ahead?"""
    return counter > (now_s + AHEAD_S) * 1000


ROUTING = "routing"
TELEMETRY = "telemetry"
POLICY = "policy"
PURPOSES = (ROUTING, TELEMETRY, POLICY)


@functools.lru_cache(maxsize=64)
def derive(secret: bytes, purpose: str) -> bytes:
    """The 32-byte key for ``purpose`` from the domain secret."""
    if purpose not in PURPOSES:
        raise ValueError(f"no key purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"dmsc-testbed/" + purpose.encode()).derive(secret)


def auth_code(key: bytes, msg_type: int, body: bytes) -> bytes:
    """HMAC-SHA256 of a control frame's type byte and body (one-shot: OpenSSL)."""
    return hmac.digest(key, bytes([msg_type]) + body, "sha256")


def sign(msg, key: bytes):
    """Set ``msg.auth`` to the HMAC-SHA256 of the message serialized
    (deterministically) with its ``auth`` field empty; returns the message."""
    msg.auth = b""
    msg.auth = hmac.new(key, msg.SerializeToString(deterministic=True), hashlib.sha256).digest()
    return msg


def verify(msg, key: bytes) -> bool:
    got = bytes(msg.auth)
    msg.auth = b""
    want = hmac.new(key, msg.SerializeToString(deterministic=True), hashlib.sha256).digest()
    msg.auth = got
    return hmac.compare_digest(got, want)
