"""Addresses as text, both ways: what the switch prints and advertises, clients read back."""

import pytest

from payswitch.protocol.addresses import AddressError, display_address, parse_address


@pytest.mark.parametrize("text, parsed", [
    ("127.0.0.1:7878", ("127.0.0.1", 7878)),
    ("switch-1.example:1", ("switch-1.example", 1)),
    ("[::1]:7878", ("::1", 7878)),
    ("[fe80::1%eth0]:65535", ("fe80::1%eth0", 65535)),
    ("localhost", ("localhost", None)),
    ("[::1]", ("::1", None)),
    ("::1", ("::1", None)),
])
def test_parse(text, parsed):
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text", [
    "", ":7878", "host:", "host:0", "host:65536", "host:port", "host:７８", "host:-1",
    "[::1", "[]:1", "[::1]7878", "[::1]:", "[::1]:x",
])
def test_refused(text):
    with pytest.raises(AddressError):
        parse_address(text)


@pytest.mark.parametrize("host, port", [("127.0.0.1", 7878), ("::1", 7879), ("node-2", 1)])
def test_display_reads_back(host, port):
    assert parse_address(display_address(host, port)) == (host, port)
    assert display_address("::1", 7878) == "[::1]:7878"
