import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payswitch.protocol import FrameDecoder, encode_frame

MAX = 1024

bodies = st.lists(st.binary(min_size=0, max_size=300), max_size=20)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


@given(bodies, st.lists(st.integers(min_value=0), max_size=40))
def test_any_chunking_of_a_valid_stream_decodes_to_the_same_bodies(frames, cuts):
    stream = b"".join(encode_frame(body) for body in frames)
    decoder = FrameDecoder(MAX)
    out = []
    for chunk in chunked(stream, cuts):
        out.extend(decoder.feed(chunk))
    assert out == [body for body in frames if body]  # empty bodies are keep-alives
    assert decoder.too_large_length is None


@given(bodies)
def test_byte_at_a_time_feeding(frames):
    stream = b"".join(encode_frame(body) for body in frames)
    decoder = FrameDecoder(MAX)
    out = []
    for index in range(len(stream)):
        out.extend(decoder.feed(stream[index:index + 1]))
    assert out == [body for body in frames if body]


def test_encode_frame_is_big_endian_length_then_body():
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"


def test_keep_alives_are_dropped():
    decoder = FrameDecoder(MAX)
    stream = encode_frame(b"") + encode_frame(b"x") + encode_frame(b"") * 3
    assert decoder.feed(stream) == [b"x"]
    assert decoder.feed(b"\x00\x00") == []
    assert decoder.feed(b"\x00\x00") == []  # completes a keep-alive header


def test_bodies_come_out_as_bytes_even_from_bytearray_and_memoryview_input():
    decoder = FrameDecoder(MAX)
    frame = encode_frame(b"hello")
    out = decoder.feed(bytearray(frame[:3])) + decoder.feed(memoryview(frame)[3:])
    assert out == [b"hello"]
    assert type(out[0]) is bytes


def test_incomplete_frame_waits_for_more_bytes():
    decoder = FrameDecoder(MAX)
    frame = encode_frame(b"payload")
    assert decoder.feed(frame[:6]) == []
    assert decoder.feed(frame[6:] + frame[:2]) == [b"payload"]
    assert decoder.feed(frame[2:]) == [b"payload"]


def test_frame_of_exactly_max_bytes_is_accepted():
    decoder = FrameDecoder(8)
    assert decoder.feed(encode_frame(b"12345678")) == [b"12345678"]
    assert decoder.too_large_length is None


def test_oversized_header_returns_earlier_bodies_and_kills_the_decoder():
    decoder = FrameDecoder(8)
    stream = encode_frame(b"one") + encode_frame(b"two") + struct.pack(">I", 9) + b"ignored body"
    assert decoder.feed(stream) == [b"one", b"two"]
    assert decoder.too_large_length == 9
    with pytest.raises(RuntimeError):
        decoder.feed(encode_frame(b"x"))


def test_oversized_header_split_across_feeds_is_detected_when_complete():
    decoder = FrameDecoder(MAX)
    header = struct.pack(">I", 2**32 - 1)
    assert decoder.feed(encode_frame(b"a") + header[:2]) == [b"a"]
    assert decoder.too_large_length is None
    assert decoder.feed(header[2:]) == []
    assert decoder.too_large_length == 2**32 - 1


def test_many_frames_in_one_feed_keep_their_order():
    decoder = FrameDecoder(MAX)
    frames = [str(i).encode() for i in range(1000)]
    assert decoder.feed(b"".join(map(encode_frame, frames))) == frames


def test_feed_with_max_frames_leaves_the_rest_buffered_in_order():
    bodies = [bytes([n % 256]) * (n % 7 + 1) for n in range(1000)]
    stream = b"".join(encode_frame(b) for b in bodies)
    stream = stream[:20] + encode_frame(b"")[:4] + stream[20:]  # a keep-alive counts as a frame
    decoder = FrameDecoder(1 << 20)
    got = decoder.feed(stream[:-3], max_frames=100)
    assert len(got) <= 100 and decoder.stopped_at_limit
    while decoder.stopped_at_limit:
        more = decoder.feed(b"", max_frames=100)
        assert len(more) <= 100
        got += more
    assert decoder.has_partial_frame  # the last frame lacks 3 bytes
    got += decoder.feed(stream[-3:], max_frames=100)
    assert got == bodies and not decoder.stopped_at_limit and not decoder.has_partial_frame


def test_feed_with_max_frames_finds_an_oversized_length_in_a_later_call():
    decoder = FrameDecoder(100)
    stream = encode_frame(b"a") * 10 + (1000).to_bytes(4, "big")
    assert decoder.feed(stream, max_frames=4) == [b"a"] * 4
    assert decoder.too_large_length is None
    assert decoder.feed(b"", max_frames=4) == [b"a"] * 4
    assert decoder.feed(b"", max_frames=4) == [b"a"] * 2
    assert decoder.too_large_length == 1000
