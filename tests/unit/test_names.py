"""The name encoding: what keys a name and a prefix become."""
import zlib

import pytest

from traffic.wire import names


def crc(s):
    return zlib.crc32(s.encode()) & 0xFFFFFFFF


def test_key_is_crc32_per_component_first_component_most_significant():
    key = names.name_key("/shop/cart")
    assert key == (crc("shop") << 96) | (crc("cart") << 64)


def test_prefix_length_is_components_times_32():
    assert names.prefix_key("/shop") == (crc("shop") << 96, 32)
    assert names.prefix_key("/shop/cart/i4")[1] == 96
    assert names.prefix_key("/") == (0, 0)


def test_prefix_key_matches_every_name_below_it():
    key, plen = names.prefix_key("/shop/cart")
    mask = ((1 << plen) - 1) << (names.KEY_BITS - plen)
    for name in ("/shop/cart", "/shop/cart/i4", "/shop/cart/i4/x/y"):
        assert names.name_key(name) & mask == key
    assert names.name_key("/shop/carts") & mask != key


def test_names_deeper_than_four_components_route_by_the_first_four():
    assert names.name_key("/a/b/c/d/e/f") == names.name_key("/a/b/c/d")


def test_prefix_deeper_than_four_components_is_refused():
    with pytest.raises(names.PrefixTooDeep, match="5 components"):
        names.prefix_key("/a/b/c/d/e")


@pytest.mark.parametrize("bad, why", [
    ("shop", "must start with '/'"),
    ("/shop//cart", "empty component"),
    ("/shop/", "empty component"),
    ("/a\x01b", "control character"),
    ("/" + "x" * 300, "longer than 255"),
    (b"/shop", "a name is a string"),
])
def test_invalid_names_say_why(bad, why):
    with pytest.raises(names.InvalidName, match=why):
        names.name_key(bad)


def test_unicode_components_hash_their_utf8_bytes():
    assert names.name_key("/café") == zlib.crc32("café".encode("utf-8")) << 96


def test_format_key_shows_covered_components():
    assert names.format_key(*names.prefix_key("/shop")) == f"{crc('shop'):08x}/32"
    assert names.format_key(0, 0) == "-/0"


def test_name_index_reverses_keys_and_reports_collisions():
    idx = names.NameIndex(["/A", "/A/1"])
    assert idx.lookup(*names.prefix_key("/A/1")) == "/A/1"
    assert idx.lookup(123, 32).startswith("<unknown")
    idx.by_key[names.prefix_key("/Z")] = "/Y"        # simulate a CRC collision
    with pytest.raises(names.InvalidName, match="same key"):
        idx.add("/Z")


def test_prefix_matches_is_component_wise():
    assert names.prefix_matches("/B", "/B/4")
    assert not names.prefix_matches("/B", "/Bx/4")
    assert names.prefix_matches("/", "/anything")


def test_key_guard_refuses_a_second_name_for_a_key_and_its_ancestors():
    from tests.support.attacker import crc32_twin
    twin = crc32_twin("B")
    g = names.KeyGuard(["/B/4"])
    assert g.conflict("/B/5") is None and g.conflict("/B") is None     # same texts: fine
    assert g.conflict(f"/{twin}") == "/B"                              # same key, other text
    assert g.conflict(f"/{twin}/7") == "/B"          # inside /B's key space though no /B/7
    assert g.conflict(f"/B/{crc32_twin('4')}") == "/B/4"
    with pytest.raises(names.KeyCollision, match="switch key of /B"):
        g.add(f"/{twin}/4")
    with pytest.raises(names.PrefixTooDeep):
        g.conflict("/a/b/c/d/e")


def test_key_guard_releases_a_key_only_when_no_name_needs_it():
    from tests.support.attacker import crc32_twin
    twin = crc32_twin("B")
    g = names.KeyGuard(["/B/4", "/B/1"])
    g.discard("/B/4")
    assert g.conflict(f"/{twin}") == "/B"            # /B/1 still holds /B's key
    g.discard("/B/1")
    assert g.conflict(f"/{twin}") is None
    g.add(f"/{twin}")
    assert g.conflict("/B") == f"/{twin}"
