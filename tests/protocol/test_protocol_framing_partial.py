"""FrameDecoder.has_partial_frame / buffered_bytes: what a server needs to time out a peer that
starts a frame and never finishes it (slowloris)."""
from hypothesis import given
from hypothesis import strategies as st

from payswitch.protocol import FrameDecoder, encode_frame

MAX = 1024


def test_nothing_fed_is_no_partial_frame():
    decoder = FrameDecoder(MAX)
    assert decoder.has_partial_frame is False
    assert decoder.buffered_bytes == 0


def test_a_partial_header_counts_as_a_partial_frame():
    decoder = FrameDecoder(MAX)
    assert decoder.feed(b"\x00") == []
    assert decoder.has_partial_frame and decoder.buffered_bytes == 1
    assert decoder.feed(b"\x00\x00") == []
    assert decoder.has_partial_frame and decoder.buffered_bytes == 3


def test_a_partial_body_counts_until_the_frame_completes():
    decoder = FrameDecoder(MAX)
    frame = encode_frame(b"payload")
    assert decoder.feed(frame[:5]) == []
    assert decoder.has_partial_frame and decoder.buffered_bytes == 5
    assert decoder.feed(frame[5:]) == [b"payload"]
    assert decoder.has_partial_frame is False and decoder.buffered_bytes == 0


def test_keep_alives_leave_nothing_partial():
    decoder = FrameDecoder(MAX)
    assert decoder.feed(encode_frame(b"") * 3) == []
    assert decoder.has_partial_frame is False


def test_a_complete_frame_followed_by_the_start_of_the_next_is_partial():
    decoder = FrameDecoder(MAX)
    assert decoder.feed(encode_frame(b"a") + b"\x00\x00\x00\x05ab") == [b"a"]
    assert decoder.has_partial_frame and decoder.buffered_bytes == 6


def test_after_an_oversized_header_nothing_is_buffered():
    decoder = FrameDecoder(8)
    decoder.feed(b"\x00\x00\x00\x09abc")
    assert decoder.too_large_length == 9
    assert decoder.has_partial_frame is False


@given(st.lists(st.binary(max_size=50), max_size=10), st.integers(min_value=0, max_value=600))
def test_partial_exactly_when_the_fed_prefix_ends_inside_a_frame(bodies, cut):
    stream = b"".join(encode_frame(body) for body in bodies)
    cut = min(cut, len(stream))
    boundaries, offset = {0}, 0
    for body in bodies:
        offset += 4 + len(body)
        boundaries.add(offset)
    decoder = FrameDecoder(MAX)
    decoder.feed(stream[:cut])
    assert decoder.has_partial_frame == (cut not in boundaries)
    assert decoder.buffered_bytes == cut - max(b for b in boundaries if b <= cut)
