"""What an attacker computes: the testbed's attacks need it too (``dmsc`` hijack
how=collision), so it is here, above the emulation, not in the tests.

``crc32_twin``: a printable name component with a chosen CRC-32. CRC-32 is
affine over GF(2): for messages of one length, crc(x ^ e) = crc(x) ^ crc(e) ^ crc(0),
so flipping one bit of a character changes the CRC by a fixed vector. With 48
positions that may each be 'a' or 'c' (one bit apart), solving 32 linear equations
over GF(2) picks the characters that give the wanted CRC: milliseconds.
"""
from __future__ import annotations

import zlib

FREE = 48


def crc32_twin(target: str, stem: str = "x") -> str:
    """A component (``stem`` + 48 letters of 'a'/'c') whose CRC-32 equals that of
    ``target`` (a name component), and which is not ``target`` itself."""
    want = zlib.crc32(target.encode("utf-8"))
    base = bytearray((stem + "a" * FREE).encode())
    c0 = zlib.crc32(bytes(base))
    cols = []
    for i in range(FREE):
        flipped = bytearray(base)
        flipped[len(stem) + i] ^= 0x02                  # 'a' <-> 'c'
        cols.append(zlib.crc32(bytes(flipped)) ^ c0)
    # Gaussian elimination over GF(2): rows are (vector, set of positions).
    basis: dict[int, tuple[int, int]] = {}                # pivot bit -> (vector, positions)
    for i, v in enumerate(cols):
        mask = 1 << i
        for bit in sorted(basis, reverse=True):
            if v >> bit & 1:
                v ^= basis[bit][0]
                mask ^= basis[bit][1]
        if v:
            basis[v.bit_length() - 1] = (v, mask)
    need, chosen = want ^ c0, 0
    for bit in sorted(basis, reverse=True):
        if need >> bit & 1:
            need ^= basis[bit][0]
            chosen ^= basis[bit][1]
    if need:
        raise ValueError("no solution with these free positions")
    out = bytearray(base)
    for i in range(FREE):
        if chosen >> i & 1:
            out[len(stem) + i] ^= 0x02
    text = out.decode()
    assert zlib.crc32(out) == want and text != target
    return text
